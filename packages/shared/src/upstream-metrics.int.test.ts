import { randomUUID } from 'node:crypto';
import { Redis } from 'ioredis';
import { afterAll, describe, expect, inject, it } from 'vitest';
import { metricsUpstreamKey } from './queue-names.js';
import { readUpstreamMetrics, recordUpstreamCall } from './upstream-metrics.js';

// Provided by test/support/global-setup.ts (outside this package's tsconfig, hence repeated here).
declare module 'vitest' {
  export interface ProvidedContext {
    redisUrl: string;
  }
}

const redis = new Redis(inject('redisUrl'), { maxRetriesPerRequest: null });
afterAll(async () => {
  await redis.quit();
});

const countAt = (buckets: { le: string; count: number }[], le: string) => buckets.find((b) => b.le === le)?.count;

describe('upstream metrics', () => {
  it('records each call in one bucket and reads cumulative buckets, count and sum per region', async () => {
    const prefix = `um-${randomUUID().slice(0, 8)}`;
    for (const ms of [100, 700, 700, 4_000, 90_000]) await recordUpstreamCall(redis, prefix, 'singapore', 'ok', ms);
    await recordUpstreamCall(redis, prefix, 'beijing', 'Throttling.RateQuota', 30);
    // Three fields a call at most: the request, its one bucket, the sum.
    const fields = Object.keys(await redis.hgetall(metricsUpstreamKey(prefix)));
    expect(fields.filter((f) => f.startsWith('hist|singapore|')).sort()).toEqual(['hist|singapore|+Inf', 'hist|singapore|0.25', 'hist|singapore|1', 'hist|singapore|5']);

    const metrics = await readUpstreamMetrics(redis, prefix);
    expect(metrics.requests).toContainEqual({ region: 'singapore', code: 'ok', count: 5 });
    expect(metrics.requests).toContainEqual({ region: 'beijing', code: 'Throttling.RateQuota', count: 1 });
    const sg = metrics.latency.find((l) => l.region === 'singapore');
    expect(sg?.buckets.map((b) => b.count)).toEqual([1, 1, 3, 3, 3, 4, 4, 4, 4, 4, 4, 5]);
    expect(sg?.buckets.map((b) => b.le).at(-1)).toBe('+Inf');
    expect(sg?.count).toBe(5);
    expect(sg?.sum).toBeCloseTo(95.5, 6);
    expect(metrics.latency.find((l) => l.region === 'beijing')?.count).toBe(1);

    // a bucket bound no longer in the list still counts, in +Inf
    await redis.hset(metricsUpstreamKey(prefix), 'hist|beijing|0.75', 2);
    const beijing = (await readUpstreamMetrics(redis, prefix)).latency.find((l) => l.region === 'beijing');
    expect(beijing?.count).toBe(3);
    expect(countAt(beijing?.buckets ?? [], '60')).toBe(1);
  });

  it('adds the cumulative buckets written by earlier versions to the new ones', async () => {
    const prefix = `um-${randomUUID().slice(0, 8)}`;
    // An earlier version incremented every bucket at or above the latency: two calls of 0.3 s.
    const old: Record<string, number> = { 'lat|singapore|sum': 0.6, 'lat|singapore|+Inf': 2 };
    for (const le of ['0.5', '1', '2', '3', '5', '8', '13', '20', '30', '60']) old[`lat|singapore|${le}`] = 2;
    await redis.hset(metricsUpstreamKey(prefix), old);
    await recordUpstreamCall(redis, prefix, 'singapore', 'ok', 200);

    const sg = (await readUpstreamMetrics(redis, prefix)).latency.find((l) => l.region === 'singapore');
    expect(countAt(sg?.buckets ?? [], '0.25')).toBe(1);
    expect(countAt(sg?.buckets ?? [], '0.5')).toBe(3);
    expect(countAt(sg?.buckets ?? [], '+Inf')).toBe(3);
    expect(sg?.count).toBe(3);
    expect(sg?.sum).toBeCloseTo(0.8, 6);
  });
});
