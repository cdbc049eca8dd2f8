import { describe, expect, it } from 'vitest';
import type { QuotaOptions } from './emulator-options.js';
import { EMULATOR_DEFAULTS } from './emulator-options.js';
import { SlidingLogLimiter } from './sliding-log-limiter.js';

const quota = (patch: Partial<QuotaOptions>): QuotaOptions => ({ ...EMULATOR_DEFAULTS.quota, model: 'sliding-log', ...patch });

describe('SlidingLogLimiter', () => {
  it('accepts at most limit in any trailing window', () => {
    const limiter = new SlidingLogLimiter(() => quota({ rpm: 180, windowMs: 1000 })); // limit 3
    expect(limiter.limit).toBe(3);
    expect([0, 400, 800, 900].map((t) => limiter.tryAccept(t))).toEqual([
      undefined,
      undefined,
      undefined,
      'Throttling.RateQuota',
    ]);
    expect(limiter.tryAccept(999)).toBe('Throttling.RateQuota');
    // Unlike a fixed window, the slot frees only when the oldest request leaves the trailing window.
    expect(limiter.tryAccept(1000)).toBeUndefined(); // the request at 0 is 1000 ms old
    expect(limiter.tryAccept(1001)).toBe('Throttling.RateQuota');
    expect(limiter.tryAccept(1400)).toBeUndefined();
    expect(limiter.tryAccept(1799)).toBe('Throttling.RateQuota');
    expect(limiter.tryAccept(1800)).toBeUndefined();
  });

  it('does not allow two limits back to back across a fixed boundary', () => {
    const limiter = new SlidingLogLimiter(() => quota({ rpm: 120, windowMs: 1000 })); // limit 2
    expect([0, 990, 995].map((t) => limiter.tryAccept(t))).toEqual([undefined, undefined, 'Throttling.RateQuota']);
    expect([1000, 1005].map((t) => limiter.tryAccept(t))).toEqual([undefined, 'Throttling.RateQuota']);
  });

  it('does not spend quota on throttled requests', () => {
    const limiter = new SlidingLogLimiter(() => quota({ rpm: 60, windowMs: 1000 })); // limit 1
    expect(limiter.tryAccept(0)).toBeUndefined();
    for (let t = 1; t < 1000; t += 10) expect(limiter.tryAccept(t)).toBe('Throttling.RateQuota');
    expect(limiter.tryAccept(1000)).toBeUndefined();
  });

  it('counts capacity as limit × ceil(T / windowMs)', () => {
    const limiter = new SlidingLogLimiter(() => quota({ rpm: 120, windowMs: 2000 })); // limit 4
    expect(limiter.capacity(0, 2000)).toBe(4);
    expect(limiter.capacity(0, 2001)).toBe(8);
    expect(limiter.capacity(100, 100)).toBe(0);
    expect(limiter.capacity(0, 60_000)).toBe(120);
    expect(limiter.quotaRpm()).toBe(120);
  });

  it('never accepts more than its capacity over an interval', () => {
    const limiter = new SlidingLogLimiter(() => quota({ rpm: 600, windowMs: 500 })); // limit 5
    let accepted = 0;
    for (let t = 0; t < 2600; t += 7) if (limiter.tryAccept(t) === undefined) accepted++;
    expect(accepted).toBe(30);
    expect(accepted).toBeLessThanOrEqual(limiter.capacity(0, 2600));
  });
});
