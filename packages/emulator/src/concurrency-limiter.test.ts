import { describe, expect, it } from 'vitest';
import { ConcurrencyLimiter } from './concurrency-limiter.js';
import type { LatencyOptions, QuotaOptions } from './emulator-options.js';
import { EMULATOR_DEFAULTS } from './emulator-options.js';

const quota = (patch: Partial<QuotaOptions>): QuotaOptions => ({ ...EMULATOR_DEFAULTS.quota, model: 'concurrency', ...patch });
const latency = (minMs: number, maxMs: number): LatencyOptions => ({ ...EMULATOR_DEFAULTS.latency, minMs, maxMs });
const unlimited = quota({ rpm: Infinity, rps: Infinity, maxInFlight: 2 });

describe('ConcurrencyLimiter', () => {
  it('throttles with Throttling at maxInFlight, whatever the rate, and frees a slot on done', () => {
    const limiter = new ConcurrencyLimiter(() => unlimited, () => latency(0, 0));
    expect([0, 0, 0].map((t) => limiter.tryAccept(t))).toEqual([undefined, undefined, 'Throttling']);
    expect(limiter.inFlight).toBe(2);
    // An hour later the cap still holds: it does not depend on time.
    expect(limiter.tryAccept(3_600_000)).toBe('Throttling');
    limiter.onDone();
    expect(limiter.inFlight).toBe(1);
    expect(limiter.tryAccept(3_600_000)).toBeUndefined();
    expect(limiter.tryAccept(3_600_000)).toBe('Throttling');
  });

  it('checks the cap before the rate rule, and the rate rule on rps and rpm', () => {
    const limiter = new ConcurrencyLimiter(() => quota({ rps: 2, rpm: 3, maxInFlight: 2 }), () => latency(0, 0));
    expect(limiter.tryAccept(0)).toBeUndefined();
    expect(limiter.tryAccept(10)).toBeUndefined();
    expect(limiter.tryAccept(20)).toBe('Throttling'); // full, although also over rps
    limiter.onDone();
    limiter.onDone();
    expect(limiter.tryAccept(30)).toBe('Throttling.RateQuota'); // 2 in the last second
    expect(limiter.tryAccept(1000)).toBeUndefined(); // 3rd in the minute
    limiter.onDone();
    expect(limiter.tryAccept(2000)).toBe('Throttling.RateQuota'); // over rpm, under rps
    expect(limiter.tryAccept(60_000)).toBeUndefined();
  });

  it('does not spend quota or slots on throttled requests', () => {
    const limiter = new ConcurrencyLimiter(() => quota({ rps: 1, rpm: Infinity, maxInFlight: 5 }), () => latency(0, 0));
    expect(limiter.tryAccept(0)).toBeUndefined();
    for (let t = 10; t < 1000; t += 10) expect(limiter.tryAccept(t)).toBe('Throttling.RateQuota');
    expect(limiter.inFlight).toBe(1);
    expect(limiter.tryAccept(1000)).toBeUndefined();
  });

  it('inherits in-flight requests from a predecessor, and never goes below zero', () => {
    const limiter = new ConcurrencyLimiter(() => unlimited, () => latency(0, 0), { inFlight: 2 });
    expect(limiter.tryAccept(0)).toBe('Throttling');
    limiter.onDone();
    limiter.onDone();
    limiter.onDone();
    expect(limiter.inFlight).toBe(0);
    expect([0, 0, 0].map((t) => limiter.tryAccept(t))).toEqual([undefined, undefined, 'Throttling']);
  });

  it('counts capacity as min(rate × T, maxInFlight × T / mean latency)', () => {
    const options = quota({ rpm: 600, rps: 100, maxInFlight: 4 });
    let lat = latency(100, 300); // mean 200 ms → 4 / 0.2 s = 20/s = 1200/min, above 600/min
    const limiter = new ConcurrencyLimiter(() => options, () => lat);
    expect(limiter.capacity(0, 60_000)).toBe(600);
    lat = latency(1000, 3000); // mean 2 s → 2/s = 120/min
    expect(limiter.capacity(0, 60_000)).toBe(120);
    expect(limiter.quotaRpm()).toBe(120);
    options.rps = 1; // now the rps binds: 60/min
    expect(limiter.capacity(0, 30_000)).toBe(30);
    lat = latency(0, 0); // no latency: only the rate rule
    expect(limiter.capacity(0, 60_000)).toBe(60);
    expect(limiter.capacity(10, 10)).toBe(0);
  });
});
