/**
 * Secrets never leak, over a real TLS + password Redis: a `zimage worker` and a `zimage api`
 * process (debug logging) run jobs that succeed, fail and call webhooks, with known secret values
 * for the API key, the webhook secret, an API token, the AWS secret and the Redis password; then
 * their logs, every Redis key, the event stream, error messages and /metrics are searched for them.
 */
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Redis } from 'ioredis';
import { describe, expect, it } from 'vitest';
import { createEmulator } from '@zimage/emulator';
import { freePort, generateWebhookSecret } from '@zimage/shared';
import { collect, spawnCli } from './support/run-cli.js';
import { startWebhookReceiver } from './support/webhook-receiver.js';

const SECRETS = {
  apiKey: 'sk-SECRETapikey-7f3a9c2e1b4d',
  webhook: generateWebhookSecret(),
  token: 'TOKENsecret-5e8d1c0a9b7f6e2d',
  aws: 'AWSsecret-1a2b3c4d5e6f7a8b',
  redisPassword: 'REDISpass-9f8e7d6c5b4a',
  metricsToken: 'METRICSscrape-3c2b1a0f9e8d',
};

function tlsMaterial(dir: string): { ca: string; cert: string; key: string } {
  const file = (name: string) => join(dir, name);
  const run = (...args: string[]) => execFileSync('openssl', args, { stdio: 'ignore' });
  run('req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-days', '1', '-subj', '/CN=zimage-test-ca', '-keyout', file('ca.key'), '-out', file('ca.pem'));
  run('req', '-newkey', 'rsa:2048', '-nodes', '-subj', '/CN=127.0.0.1', '-keyout', file('server.key'), '-out', file('server.csr'));
  writeFileSync(file('san.cnf'), 'subjectAltName=IP:127.0.0.1,DNS:localhost\n');
  run('x509', '-req', '-in', file('server.csr'), '-CA', file('ca.pem'), '-CAkey', file('ca.key'), '-CAcreateserial', '-days', '1', '-extfile', file('san.cnf'), '-out', file('server.pem'));
  return { ca: file('ca.pem'), cert: file('server.pem'), key: file('server.key') };
}

async function waitFor(condition: () => Promise<boolean> | boolean, timeoutMs: number, what: string): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await condition())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

describe('security', () => {
  it('works over rediss:// with a password, and no secret appears in logs, Redis, events, errors or metrics', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'zimage-sec-'));
    const tls = tlsMaterial(dir);
    const port = await freePort();
    const redisServer = spawn('redis-server', ['--port', '0', '--tls-port', String(port), '--bind', '127.0.0.1', '--tls-cert-file', tls.cert, '--tls-key-file', tls.key, '--tls-ca-cert-file', tls.ca, '--tls-auth-clients', 'no', '--requirepass', SECRETS.redisPassword, '--save', '', '--appendonly', 'no', '--dir', dir], { stdio: 'ignore' });
    const emulator = await createEmulator({ latency: { minMs: 5, maxMs: 20 }, quota: { rpm: Infinity, rps: Infinity, burst: { enabled: false } } });
    const receiver = await startWebhookReceiver(SECRETS.webhook);
    const redisUrl = `rediss://:${SECRETS.redisPassword}@127.0.0.1:${port}`;
    const prefix = 'sec';
    const env = {
      REDIS_URL: redisUrl,
      ZIMAGE_PREFIX: prefix,
      NODE_EXTRA_CA_CERTS: tls.ca,
      LOG_LEVEL: 'debug',
      AWS_SECRET_ACCESS_KEY: SECRETS.aws,
      AWS_ACCESS_KEY_ID: 'AKIAEXAMPLE',
      ZIMAGE_WEBHOOK_ALLOWED_HOSTS: '127.0.0.1',
    };
    const processes: ChildProcess[] = [];
    const outputs: Promise<{ stdout: string; stderr: string }>[] = [];
    const redis = new Redis(redisUrl, { tls: { ca: readFileSync(tls.ca) } });
    redis.on('error', () => {}); // until redis-server listens
    try {
      await waitFor(async () => (await redis.ping().catch(() => '')) === 'PONG', 10_000, 'redis over TLS');
      const worker = spawnCli(['worker'], { ...env, DASHSCOPE_API_KEY: SECRETS.apiKey, DASHSCOPE_BASE_URL: emulator.url, STORAGE_URL: `file:${join(dir, 'out')}`, ZIMAGE_WEBHOOK_SECRET: SECRETS.webhook, ZIMAGE_RPM: '6000' });
      const api = spawnCli(['api', '--port', '0', '--host', '127.0.0.1'], { ...env, ZIMAGE_API_TOKENS: SECRETS.token, ZIMAGE_METRICS_TOKEN: SECRETS.metricsToken, STORAGE_URL: `file:${join(dir, 'out')}` });
      processes.push(worker, api);
      outputs.push(collect(worker, 120_000), collect(api, 120_000));
      let apiErr = '';
      api.stderr?.on('data', (c: Buffer) => (apiErr += c.toString()));
      await waitFor(() => /listening on (http:\/\/\S+)/.test(apiErr), 30_000, 'the API');
      const url = /listening on (http:\/\/\S+)/.exec(apiErr)![1];
      const call = (path: string, body?: unknown) =>
        fetch(`${url}${path}`, { method: body ? 'POST' : 'GET', headers: { authorization: `Bearer ${SECRETS.token}`, 'content-type': 'application/json' }, ...(body ? { body: JSON.stringify(body) } : {}) });

      const batch = (await (await call('/v1/batches?size=512*512', [{ prompt: 'A safe teapot', webhook: { url: `${receiver.url}/h` } }, { prompt: 'zimage-test-unsafe teapot', webhook: { url: `${receiver.url}/h` } }])).json()) as { batchId: string };
      await waitFor(async () => ((await (await call(`/v1/batches/${batch.batchId}`)).json()) as { state: string }).state === 'completed', 60_000, 'the batch');
      await receiver.waitFor((r) => r.length >= 2, 20_000);
      expect(receiver.received.every((d) => d.verifyError === undefined)).toBe(true);
      const unauthorised = await (await fetch(`${url}/v1/jobs/x`, { headers: { authorization: 'Bearer wrong-token-000000000000' } })).text();
      // /metrics shows spend and account ids: a token (the scraper's, or an API token) is required.
      expect((await fetch(`${url}/metrics`)).status).toBe(401);
      const metrics = await (await fetch(`${url}/metrics`, { headers: { authorization: `Bearer ${SECRETS.metricsToken}` } })).text();
      expect(metrics).toContain('zimage_images_stored_total 1');
      const results = await (await call(`/v1/batches/${batch.batchId}/results`)).text();

      // Everything Redis holds, as text.
      const keys = await redis.keys('*');
      const dumps: string[] = [];
      for (const key of keys) {
        const type = await redis.type(key);
        if (type === 'string') dumps.push(String(await redis.get(key)));
        else if (type === 'hash') dumps.push(JSON.stringify(await redis.hgetall(key)));
        else if (type === 'list') dumps.push(JSON.stringify(await redis.lrange(key, 0, -1)));
        else if (type === 'set') dumps.push(JSON.stringify(await redis.smembers(key)));
        else if (type === 'zset') dumps.push(JSON.stringify(await redis.zrange(key, '0', '-1')));
        else if (type === 'stream') dumps.push(JSON.stringify(await redis.xrange(key, '-', '+')));
      }
      for (const process of processes) process.kill('SIGTERM');
      const logs = (await Promise.all(outputs)).map((o) => o.stdout + o.stderr).join('\n');
      expect(logs).toContain('Stored '); // debug logs were produced and captured

      const haystacks = { logs, redis: dumps.join('\n'), metrics, results, unauthorised, webhookBodies: receiver.received.map((d) => d.body).join('\n') };
      for (const [name, secret] of Object.entries(SECRETS)) {
        const needle = name === 'webhook' ? secret.slice('whsec_'.length, 30) : secret;
        for (const [where, text] of Object.entries(haystacks)) expect(text.includes(needle), `${name} found in ${where}`).toBe(false);
      }
      expect(keys.length).toBeGreaterThan(10);
    } finally {
      for (const process of processes) if (process.exitCode === null) process.kill('SIGKILL');
      redis.disconnect();
      redisServer.kill('SIGTERM');
      await receiver.close();
      await emulator.close();
      rmSync(dir, { recursive: true, force: true });
    }
  }, 180_000);
});
