/** `zimage api` as a real process, configured by environment variables only. */
import { randomUUID } from 'node:crypto';
import { describe, expect, inject, it } from 'vitest';
import { collect, runCli, spawnCli } from './support/run-cli.js';

const redisUrl = inject('redisUrl');

describe('zimage api', () => {
  it('refuses to start without tokens, naming the variable; serves with them and stops on SIGTERM', async () => {
    const prefix = `a${randomUUID().slice(0, 8)}`;
    const missing = await runCli(['api', '--port', '0'], { REDIS_URL: redisUrl, ZIMAGE_PREFIX: prefix });
    expect(missing.code).toBe(2);
    expect(missing.stderr).toContain('ZIMAGE_API_TOKENS: is required');
    const short = await runCli(['api', '--port', '0'], { REDIS_URL: redisUrl, ZIMAGE_API_TOKENS: 'short' });
    expect(short.stderr).toContain('ZIMAGE_API_TOKENS: each token must be at least 16 characters');
    expect(short.stderr).not.toContain('"short"');

    const token = 'cli-token-0123456789abcdef';
    const child = spawnCli(['api', '--port', '0', '--host', '127.0.0.1'], { REDIS_URL: redisUrl, ZIMAGE_PREFIX: prefix, ZIMAGE_API_TOKENS: token, STORAGE_URL: 'file:/tmp/zimage-api-cli-test' });
    const exited = collect(child, 60_000);
    let stderr = '';
    child.stderr?.on('data', (c: Buffer) => (stderr += c.toString()));
    const deadline = Date.now() + 30_000;
    while (!/listening on (http:\/\/\S+)/.test(stderr)) {
      if (Date.now() > deadline) throw new Error(`api did not start: ${stderr}`);
      await new Promise((r) => setTimeout(r, 50));
    }
    const url = /listening on (http:\/\/\S+)/.exec(stderr)![1];
    expect((await fetch(`${url}/readyz`)).status).toBe(200);
    expect((await fetch(`${url}/v1/jobs/x`)).status).toBe(401);
    const created = await fetch(`${url}/v1/jobs`, { method: 'POST', headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' }, body: JSON.stringify({ prompt: 'From the CLI API' }) });
    expect(created.status).toBe(202);
    child.kill('SIGTERM');
    const result = await exited;
    expect(result.code).toBe(0);
    expect(result.stdout + result.stderr).not.toContain(token);
  });
});
