import { describe, expect, it } from 'vitest';
import type { QuotaOptions } from './emulator-options.js';
import { EMULATOR_DEFAULTS } from './emulator-options.js';
import { TokenBucketLimiter } from './token-bucket-limiter.js';

const quota = (patch: Partial<QuotaOptions>): QuotaOptions => ({ ...EMULATOR_DEFAULTS.quota, model: 'token-bucket', ...patch });

describe('TokenBucketLimiter', () => {
  it('starts full: a burst of bucketSize passes, the next is throttled', () => {
    const limiter = new TokenBucketLimiter(() => quota({ rpm: 60, bucketSize: 5 }));
    const burst = Array.from({ length: 6 }, () => limiter.tryAccept(1000));
    expect(burst).toEqual([undefined, undefined, undefined, undefined, undefined, 'Throttling.RateQuota']);
    expect(limiter.startedAt).toBe(1000);
  });

  it('refills rpm / 60 tokens per second, one request per whole token', () => {
    const limiter = new TokenBucketLimiter(() => quota({ rpm: 120, bucketSize: 2 })); // 2 tokens/s
    expect([0, 0, 0].map((t) => limiter.tryAccept(t))).toEqual([undefined, undefined, 'Throttling.RateQuota']);
    expect(limiter.tryAccept(499)).toBe('Throttling.RateQuota'); // 0.998 tokens
    expect(limiter.tryAccept(500)).toBeUndefined(); // 1 token
    expect(limiter.tryAccept(600)).toBe('Throttling.RateQuota');
    // A long idle refills to the capacity only.
    expect(limiter.tokens(60_000)).toBe(2);
    expect([60_000, 60_000, 60_000].map((t) => limiter.tryAccept(t))).toEqual([undefined, undefined, 'Throttling.RateQuota']);
  });

  it('handles fractional refills without float drift', () => {
    const limiter = new TokenBucketLimiter(() => quota({ rpm: 6, bucketSize: 1 })); // 0.1 token/s
    expect(limiter.tryAccept(0)).toBeUndefined();
    for (let t = 1000; t < 10_000; t += 1000) expect(limiter.tryAccept(t)).toBe('Throttling.RateQuota');
    expect(limiter.tryAccept(10_000)).toBeUndefined();
  });

  it('does not spend tokens on throttled requests', () => {
    const limiter = new TokenBucketLimiter(() => quota({ rpm: 60, bucketSize: 1 }));
    expect(limiter.tryAccept(0)).toBeUndefined();
    for (let t = 10; t < 1000; t += 10) expect(limiter.tryAccept(t)).toBe('Throttling.RateQuota');
    expect(limiter.tryAccept(1000)).toBeUndefined();
  });

  it('keeps the bucket full with an unlimited rpm', () => {
    const limiter = new TokenBucketLimiter(() => quota({ rpm: Infinity, bucketSize: 1 }));
    expect([0, 0, 0, 1].map((t) => limiter.tryAccept(t))).toEqual([undefined, undefined, undefined, undefined]);
  });

  it('counts capacity as bucketSize + rpm / 60000 × T, and never accepts more', () => {
    const limiter = new TokenBucketLimiter(() => quota({ rpm: 600, bucketSize: 10 })); // 10 tokens/s
    expect(limiter.capacity(0, 3000)).toBe(40);
    expect(limiter.capacity(0, 0)).toBe(0);
    expect(limiter.quotaRpm()).toBe(600);
    let accepted = 0;
    for (let t = 0; t <= 3000; t += 5) if (limiter.tryAccept(t) === undefined) accepted++;
    expect(accepted).toBe(40); // 10 at once, then one every 100 ms (t = 100 … 3000)
    expect(accepted).toBeLessThanOrEqual(limiter.capacity(0, 3001));
  });
});
