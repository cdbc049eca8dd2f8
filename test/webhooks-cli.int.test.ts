/**
 * Webhooks through the command line, configured only by environment variables: a real
 * `zimage worker` process delivers, `zimage webhooks log|replay|list|enable` operate on it.
 */
import { randomUUID } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Redis } from 'ioredis';
import { describe, expect, inject, it } from 'vitest';
import { createEmulator } from '@zimage/emulator';
import { eventIdFor, generateWebhookSecret } from '@zimage/shared';
import { collect, runCli, spawnCli } from './support/run-cli.js';
import { startWebhookReceiver } from './support/webhook-receiver.js';
import { until } from './support/until.js';

const redisUrl = inject('redisUrl');


describe('zimage webhooks', () => {
  it('a worker configured by env signs and delivers; log shows attempts; replay resends a dead letter; enable re-opens a 410 endpoint', async () => {
    const prefix = `w${randomUUID().slice(0, 8)}`;
    const jobSecret = generateWebhookSecret();
    const opsSecret = generateWebhookSecret();
    const receiver = await startWebhookReceiver(jobSecret);
    const ops = await startWebhookReceiver(opsSecret);
    const emulator = await createEmulator({ latency: { minMs: 5, maxMs: 20 }, quota: { rpm: Infinity, rps: Infinity, burst: { enabled: false } } });
    const output = mkdtempSync(join(tmpdir(), 'zimage-wh-'));
    const env = {
      REDIS_URL: redisUrl,
      ZIMAGE_PREFIX: prefix,
      ZIMAGE_WEBHOOK_ALLOWED_HOSTS: '127.0.0.1',
    };
    const worker = spawnCli(['worker'], {
      ...env,
      DASHSCOPE_API_KEY: 'sk-test-0123456789abcdef',
      DASHSCOPE_BASE_URL: emulator.url,
      STORAGE_URL: `file:${output}`,
      ZIMAGE_RPM: '6000',
      ZIMAGE_WEBHOOK_SECRET: jobSecret,
      ZIMAGE_WEBHOOK_RETRY_SCHEDULE: '100ms',
      ZIMAGE_WEBHOOK_ENDPOINTS: JSON.stringify([{ id: 'ops', url: `${ops.url}/ops`, events: ['job.failed'], secretEnv: 'OPS_SECRET' }]),
      OPS_SECRET: opsSecret,
    });
    const exited = collect(worker, 120_000);
    const redis = new Redis(redisUrl);
    try {
      // The receiver fails everything at first: both attempts fail, the delivery is dead-lettered.
      receiver.respond(() => ({ status: 500, body: 'boom' }));
      ops.respond(() => ({ status: 410 }));
      const ok = await runCli(['enqueue', '--prompt', 'A blue vase', '--size', '512*512', '--webhook', `${receiver.url}/hook`], env);
      expect(ok.code, ok.stderr).toBe(0);
      const eventId = eventIdFor('job.succeeded', ok.stdout.trim());
      const failing = await runCli(['enqueue', '--prompt', 'zimage-test-unsafe vase', '--size', '512*512'], env);
      const failedEvent = eventIdFor('job.failed', failing.stdout.trim());
      await until(async () => (await runCli(['webhooks', 'log', eventId, '--json'], env)).stdout.includes('dead-lettered'), 30_000);
      expect(receiver.received.every((d) => d.verifyError === undefined)).toBe(true);
      expect(receiver.received).toHaveLength(2);

      const log = await runCli(['webhooks', 'log', eventId], env);
      expect(log.code, log.stderr).toBe(0);
      expect(log.stdout).toMatch(/job-[0-9a-f]{16} \(127\.0\.0\.1:\d+\)\s+#1\s+500 \d+ ms\s+failed · 127\.0\.0\.1:\d+ answered 500: boom · next /);
      expect(log.stdout).toMatch(/#2\s+500 \d+ ms\s+dead-lettered/);

      receiver.respond(() => ({ status: 204 }));
      const replay = await runCli(['webhooks', 'replay', eventId], env);
      expect(replay.code, replay.stderr).toBe(0);
      expect(replay.stdout).toContain('Replayed 1 delivery');
      await receiver.waitFor((r) => r.length === 3);
      expect(receiver.received[2]!.headers['webhook-id']).toBe(eventId);
      expect(receiver.received[2]!.verifyError).toBeUndefined();

      // The registered endpoint answered 410: disabled, listed as such, re-enabled by the operator.
      await ops.waitFor((r) => r.length === 1);
      expect(ops.received[0]!.verifyError).toBeUndefined();
      expect(ops.received[0]!.headers['webhook-id']).toBe(failedEvent);
      await until(async () => (await runCli(['webhooks', 'list'], { ...env, ZIMAGE_WEBHOOK_ENDPOINTS: JSON.stringify([{ id: 'ops', url: `${ops.url}/ops`, secretEnv: 'OPS_SECRET' }]) })).stdout.includes('DISABLED'), 30_000);
      const enable = await runCli(['webhooks', 'enable', 'ops'], env);
      expect(enable.stdout).toContain('Endpoint ops enabled');
      ops.respond(() => ({ status: 200 }));
      const replayOps = await runCli(['webhooks', 'replay', '--endpoint', 'ops', '--since', new Date(Date.now() - 60_000).toISOString()], env);
      expect(replayOps.stdout, replayOps.stderr).toContain('Replayed 1 delivery');
      await ops.waitFor((r) => r.length === 2);

      // Operator mistakes are bad input (exit 2), naming what is wrong.
      const unknown = await runCli(['webhooks', 'log', 'evt_000000000000000000000000'], env);
      expect(unknown.code).toBe(2);
      expect(unknown.stderr).toContain('EVENT_NOT_FOUND');
      const badSince = await runCli(['webhooks', 'replay', '--endpoint', 'ops', '--since', 'yesterday'], env);
      expect(badSince.code).toBe(2);
      expect(badSince.stderr).toContain('--since must be an ISO 8601 time');
      const refused = await runCli(['enqueue', '--prompt', 'x', '--webhook', 'http://169.254.169.254/latest'], { REDIS_URL: redisUrl, ZIMAGE_PREFIX: prefix });
      expect(refused.code).toBe(2);
      expect(refused.stderr).toMatch(/WEBHOOK_URL_REFUSED: .*169\.254\.169\.254.*cloud metadata/);
      // The secrets never reach Redis.
      const keys = await redis.keys(`${prefix}:*`);
      const dump = (await Promise.all(keys.map(async (k) => JSON.stringify(await redis.dump(k))))).join('\n');
      expect(dump).not.toContain(jobSecret.slice(6, 30));
      expect(dump).not.toContain(opsSecret.slice(6, 30));
    } finally {
      worker.kill('SIGTERM');
      const result = await exited;
      expect(result.stdout + result.stderr).not.toContain(jobSecret.slice(6));
      redis.disconnect();
      await receiver.close();
      await ops.close();
      await emulator.close();
      rmSync(output, { recursive: true, force: true });
    }
  });
});
