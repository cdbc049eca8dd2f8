import { describe, expect, it } from 'vitest';
import type { QuotaOptions } from './emulator-options.js';
import { EMULATOR_DEFAULTS } from './emulator-options.js';
import { FixedWindowLimiter } from './fixed-window-limiter.js';

const quota = (patch: Partial<QuotaOptions>): QuotaOptions => ({ ...EMULATOR_DEFAULTS.quota, model: 'fixed-window', ...patch });

describe('FixedWindowLimiter', () => {
  it('accepts floor(rpm × windowMs / 60000) per window, at least 1', () => {
    expect(new FixedWindowLimiter(() => quota({ rpm: 120, windowMs: 60_000 })).limit).toBe(120);
    expect(new FixedWindowLimiter(() => quota({ rpm: 120, windowMs: 1000 })).limit).toBe(2);
    expect(new FixedWindowLimiter(() => quota({ rpm: 150, windowMs: 1000 })).limit).toBe(2); // 2.5 floored
    expect(new FixedWindowLimiter(() => quota({ rpm: 30, windowMs: 1000 })).limit).toBe(1); // 0.5 → at least 1
  });

  it('lets the whole limit through at once, then throttles until the boundary resets it', () => {
    const limiter = new FixedWindowLimiter(() => quota({ rpm: 180, windowMs: 1000 })); // limit 3
    expect([100, 101, 102, 103, 600].map((t) => limiter.tryAccept(t))).toEqual([
      undefined,
      undefined,
      undefined,
      'Throttling.RateQuota',
      'Throttling.RateQuota',
    ]);
    expect(limiter.startedAt).toBe(100);
    expect(limiter.tryAccept(1099)).toBe('Throttling.RateQuota'); // still the first window [100, 1100)
    // The window boundary is aligned to the start (100), not to the clock's whole seconds.
    expect([1100, 1101, 1102, 1103].map((t) => limiter.tryAccept(t))).toEqual([
      undefined,
      undefined,
      undefined,
      'Throttling.RateQuota',
    ]);
  });

  it('allows two limits back to back across a boundary (the fixed-window weakness)', () => {
    const limiter = new FixedWindowLimiter(() => quota({ rpm: 120, windowMs: 1000 })); // limit 2
    expect(limiter.tryAccept(0)).toBeUndefined(); // start
    expect([990, 995].map((t) => limiter.tryAccept(t))).toEqual([undefined, 'Throttling.RateQuota']);
    expect([1000, 1005].map((t) => limiter.tryAccept(t))).toEqual([undefined, undefined]);
  });

  it('does not spend quota on throttled requests', () => {
    const limiter = new FixedWindowLimiter(() => quota({ rpm: 60, windowMs: 1000 })); // limit 1
    expect(limiter.tryAccept(0)).toBeUndefined();
    for (let t = 1; t < 1000; t += 10) expect(limiter.tryAccept(t)).toBe('Throttling.RateQuota');
    expect(limiter.tryAccept(1000)).toBeUndefined();
  });

  it('reads rpm live', () => {
    const options = quota({ rpm: 60, windowMs: 1000 });
    const limiter = new FixedWindowLimiter(() => options);
    expect(limiter.tryAccept(0)).toBeUndefined();
    expect(limiter.tryAccept(1)).toBe('Throttling.RateQuota');
    options.rpm = 120;
    expect(limiter.tryAccept(2)).toBeUndefined();
  });

  it('counts capacity as limit × the windows overlapping the interval, none before the start', () => {
    const limiter = new FixedWindowLimiter(() => quota({ rpm: 120, windowMs: 1000 })); // limit 2
    // Not started: windows assumed to start at fromMs.
    expect(limiter.capacity(0, 1000)).toBe(2);
    expect(limiter.capacity(0, 1001)).toBe(4);
    expect(limiter.capacity(5, 5)).toBe(0);
    limiter.tryAccept(500);
    expect(limiter.capacity(500, 1500)).toBe(2); // exactly the first window
    expect(limiter.capacity(0, 1500)).toBe(2); // before the start: no window
    expect(limiter.capacity(1400, 1600)).toBe(4); // straddles a boundary: two windows
    expect(limiter.capacity(500, 10_500)).toBe(20);
    expect(limiter.capacity(0, 400)).toBe(0);
    expect(limiter.quotaRpm()).toBe(120);
  });

  it('never accepts more than its capacity, even with a first-window burst', () => {
    const limiter = new FixedWindowLimiter(() => quota({ rpm: 600, windowMs: 500 })); // limit 5
    let accepted = 0;
    for (let t = 0; t < 2600; t += 7) if (limiter.tryAccept(t) === undefined) accepted++;
    expect(accepted).toBe(30); // 6 windows started: [0,500) … [2500,3000)
    expect(limiter.capacity(0, 2600)).toBe(30);
    expect(accepted).toBeLessThanOrEqual(limiter.capacity(0, 2600));
  });
});
