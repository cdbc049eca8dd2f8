import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { checkWithin, readHealth, startHealthFile, type CheckState } from './health-file.js';

const dir = mkdtempSync(join(tmpdir(), 'zimage-health-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

async function fileAppears(path: string): Promise<void> {
  const until = Date.now() + 10_000;
  while (!existsSync(path)) {
    if (Date.now() > until) throw new Error(`${path} was never written`);
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}

describe('health file', () => {
  it('is healthy while every check is ok and the report is fresh; names what is down; a stale report means stuck', async () => {
    const path = join(dir, 'ok.json');
    const writer = startHealthFile(path, 'worker', async () => ({ redis: 'ok', storage: 'ok' }));
    await fileAppears(path);
    writer.stop();
    const fresh = await readHealth(path, 30_000);
    expect(fresh.healthy && fresh.report.role).toBe('worker');
    const stale = await readHealth(path, 30_000, Date.now() + 60_000);
    expect(stale).toMatchObject({ healthy: false, reason: expect.stringMatching(/not written for 6\d s/) });

    const downPath = join(dir, 'down.json');
    const down = startHealthFile(downPath, 'api', async (): Promise<Record<string, CheckState>> => ({ redis: 'ok', storage: 'unavailable' }));
    await fileAppears(downPath);
    down.stop();
    expect(await readHealth(downPath, 30_000)).toEqual({ healthy: false, reason: 'storage unavailable' });
  });

  it('is unhealthy without a file or with an unreadable one', async () => {
    expect(await readHealth(join(dir, 'missing.json'), 30_000)).toMatchObject({ healthy: false, reason: expect.stringContaining('no health file') });
    writeFileSync(join(dir, 'torn.json'), '{"ok":tr');
    expect(await readHealth(join(dir, 'torn.json'), 30_000)).toMatchObject({ healthy: false, reason: expect.stringContaining('unreadable') });
  });

  it('counts a check that does not answer in time as unavailable, and one that throws', async () => {
    expect(await checkWithin(() => new Promise(() => {}), 20)).toBe('unavailable');
    expect(await checkWithin(() => Promise.reject(new Error('ECONNREFUSED')))).toBe('unavailable');
    expect(await checkWithin(() => Promise.resolve('PONG'))).toBe('ok');
  });
});
