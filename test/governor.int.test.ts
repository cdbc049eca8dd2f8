import { randomUUID } from 'node:crypto';
import { Redis } from 'ioredis';
import { describe, expect, inject, it, vi } from 'vitest';
import { createEmulator } from '@zimage/emulator';
import { createLogger } from '@zimage/shared';
import { createGovernor, paceKey, type PaceConfig } from '@zimage/worker';
import { collect, spawnCli } from './support/run-cli.js';
import { startStack, TEST_API_KEY } from './support/stack.js';

/** A governor of one account of 6,000 a minute (the upstream is never called). */
function oneAccountGovernor(redis: Redis, prefix: string, pace?: Partial<PaceConfig>) {
  return createGovernor({
    redis,
    prefix,
    accounts: [{ id: 'a', region: 'singapore', baseUrl: 'http://127.0.0.1:1', apiKey: TEST_API_KEY, rpm: 6_000 }],
    logger: createLogger({ level: 'silent' }),
    ...(pace ? { pace } : {}),
  });
}

describe('quota governor', () => {
  it('keeps two worker processes sharing one account within its quota (plus a small burst)', async () => {
    // 10 a second, 600 a minute, and a strict ramp guard (5 a second from idle).
    await using stack = await startStack({
      worker: false,
      emulator: { latency: { minMs: 100, maxMs: 300 }, quota: { rps: 10, rpm: 600, burst: { enabled: true, floorPerSecond: 5 } } },
    });
    const { batchId } = await stack.producer.enqueueMany(Array.from({ length: 80 }, (_, i) => ({ prompt: `Tile ${i}`, size: '512*512' })));
    const env = {
      REDIS_URL: stack.redisUrl,
      ZIMAGE_PREFIX: stack.prefix,
      DASHSCOPE_API_KEY: TEST_API_KEY,
      DASHSCOPE_BASE_URL: stack.emulator.url,
      STORAGE_URL: `file:${stack.outputDir}`,
      ZIMAGE_RPM: '600',
      ZIMAGE_CONCURRENCY: '8',
    };
    const workers = [spawnCli(['worker'], env), spawnCli(['worker'], env)];
    const exits = workers.map((w) => collect(w, 120_000));
    try {
      const status = await stack.waitForBatch(batchId, 90_000);
      expect(status).toMatchObject({ succeeded: 80, failed: 0 });
    } finally {
      for (const w of workers) w.kill('SIGTERM');
      for (const exit of exits) expect((await exit).code).toBe(0);
    }
    const stats = stack.emulator.stats();
    expect(stats.imagesGenerated).toBe(80);
    // Arrivals, throttled ones included, never exceed the quota by more than a burst of 2.
    expect(stats.peakRequestsPerSecond).toBeLessThanOrEqual(12);
    expect(stats.peakRequestsPerMinute).toBeLessThanOrEqual(600);
    expect(stats.throttled / stats.requests).toBeLessThan(0.1);
  });

  it('moves a throttled account’s work to another account', async () => {
    const slow = await createEmulator({ latency: { minMs: 20, maxMs: 50 }, quota: { rps: 1, rpm: 20, burst: { enabled: false }, retryAfterSeconds: 5 } });
    try {
      await using stack = await startStack({
        emulator: { latency: { minMs: 20, maxMs: 50 }, quota: { rps: 20, rpm: 1200, burst: { enabled: false } } },
        worker: false,
      });
      const worker = await stack.startWorker({
        accounts: [
          { id: 'small', region: 'beijing', baseUrl: slow.url, apiKey: TEST_API_KEY, rpm: 600 },
          { id: 'big', region: 'singapore', baseUrl: stack.emulator.url, apiKey: TEST_API_KEY, rpm: 600 },
        ],
      });
      const { batchId, jobs } = await stack.producer.enqueueMany(Array.from({ length: 40 }, (_, i) => ({ prompt: `Cup ${i}`, size: '512*512' })));
      await stack.waitForBatch(batchId, 60_000);
      const byAccount: Record<string, number> = {};
      for (const job of jobs) {
        const view = await stack.producer.getJob(job.jobId);
        expect(view?.state).toBe('completed');
        const account = view?.result?.accountId ?? '?';
        byAccount[account] = (byAccount[account] ?? 0) + 1;
        expect(view?.result?.region).toBe(account === 'small' ? 'beijing' : 'singapore');
      }
      expect(slow.stats().throttled).toBeGreaterThan(0);
      expect(byAccount['big']).toBeGreaterThan(30);
      expect((byAccount['small'] ?? 0) + (byAccount['big'] ?? 0)).toBe(40);
      expect(slow.stats().imagesGenerated + stack.emulator.stats().imagesGenerated).toBe(40);
      // Every stored job released its lease: the hold time Little's law sizes concurrency by is known.
      const big = (await worker.governor.snapshot()).find((a) => a.id === 'big');
      expect(big?.holdMs).toBeGreaterThan(0);
      const snapshot = await stack.startWorker().then((w) => w.governor.snapshot());
      expect(snapshot.map((a) => a.id)).toEqual(['test']);
    } finally {
      await slow.close();
    }
  });

  it('serves one process’s concurrent callers with shared compare-and-sets, every slot its own and spaced', async () => {
    const redis = new Redis(inject('redisUrl'));
    let compareAndSets = 0;
    // Counts the store's compare-and-set scripts; every call still goes to the real Redis.
    const counted = new Proxy(redis, {
      get(target, property, receiver) {
        if (property === 'eval') {
          return (...args: Parameters<Redis['eval']>) => {
            compareAndSets += 1;
            return target.eval(...args);
          };
        }
        const value: unknown = Reflect.get(target, property, receiver);
        return typeof value === 'function' ? (value as (...a: unknown[]) => unknown).bind(target) : value;
      },
    });
    try {
      // Starts at half of 6,000 a minute: a slot every 20 ms; no growth, so the spacing is fixed.
      const governor = oneAccountGovernor(counted, `gov-${randomUUID().slice(0, 8)}`, { growthPerSecond: 0 });
      const started = Date.now();
      const leases = await Promise.all(Array.from({ length: 40 }, () => governor.acquire(undefined, true)));
      const elapsed = Date.now() - started;
      expect(leases).toHaveLength(40);
      // 40 slots 20 ms apart, none shared: a timer never fires before its slot, so the k-th lease
      // to arrive cannot come before k × 20 ms (1 ms for clock rounding).
      const granted = leases.map((l) => l.grantedAt - started).sort((a, b) => a - b);
      for (const [k, at] of granted.entries()) expect(at).toBeGreaterThanOrEqual(k * 20 - 1);
      expect(elapsed).toBeGreaterThanOrEqual(780 - 1);
      // One compare-and-set per round of waiting callers, not one (or more, losing races) per caller.
      expect(compareAndSets).toBeLessThanOrEqual(6);
      const [view] = await governor.snapshot();
      expect(view?.utilisation).toBeGreaterThan(0);
      // Little's law uses how long a job holds its slot once granted, measured on release.
      expect(view?.holdMs).toBeNull();
      for (const lease of leases) governor.release({ ...lease, grantedAt: Date.now() - 500 });
      const [after] = await governor.snapshot();
      expect(after?.holdMs).toBeGreaterThanOrEqual(500);
      // 3,000 a minute × 0.5 s × 2 + 2 = 52 (53 if a millisecond passed between the two clocks)
      expect(await governor.suggestedConcurrency()).toBeGreaterThanOrEqual(52);
      expect(await governor.suggestedConcurrency()).toBeLessThanOrEqual(53);
    } finally {
      redis.disconnect();
    }
  });

  it('gives no slot to a caller cancelled while it waited for its round', async () => {
    const redis = new Redis(inject('redisUrl'));
    const prefix = `gov-${randomUUID().slice(0, 8)}`;
    try {
      const governor = oneAccountGovernor(redis, prefix, { growthPerSecond: 0 });
      const first = governor.acquire(undefined, true); // its round starts now
      const cancel = new AbortController();
      const cancelled = governor.acquire(cancel.signal, true); // waits for the next round…
      cancel.abort(new Error('job cancelled'));
      const third = governor.acquire(undefined, true); // …which it would have shared with this one
      await expect(cancelled).rejects.toThrow('job cancelled');
      await Promise.all([first, third]);
      const state = JSON.parse((await redis.get(paceKey(prefix, 'a'))) ?? '{}') as { window?: { grants?: number } };
      expect(state.window?.grants).toBe(2);
    } finally {
      redis.disconnect();
    }
  });

  it('writes a good call\'s report with the next round, or within a moment when none comes; flush() writes it at once', async () => {
    const redis = new Redis(inject('redisUrl'));
    const prefix = `gov-${randomUUID().slice(0, 8)}`;
    const inFlight = async () => ((JSON.parse((await redis.get(paceKey(prefix, 'a'))) ?? '{}') as { leases?: Record<string, [number, number]> }).leases ?? {});
    const unreported = async () => Object.values(await inFlight()).filter(([, reportedAt]) => reportedAt === 0).length;
    try {
      const governor = oneAccountGovernor(redis, prefix);
      // no round follows: the deferred report is written on its own
      const alone = await governor.acquire();
      await governor.report(alone, { kind: 'ok', latencyMs: 5 });
      await vi.waitFor(async () => expect(await unreported()).toBe(0), { timeout: 10_000, interval: 20 });
      // the next reservation carries it
      const first = await governor.acquire();
      await governor.report(first, { kind: 'ok', latencyMs: 5 });
      await governor.acquire();
      expect(Object.values(await inFlight()).filter(([, reportedAt]) => reportedAt === 0)).toHaveLength(1);
      // flush() before shutdown
      const last = await governor.acquire();
      await governor.report(last, { kind: 'not-sent' });
      await governor.flush();
      expect(await unreported()).toBe(1);
    } finally {
      redis.disconnect();
    }
  });
});
