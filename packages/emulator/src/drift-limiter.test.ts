import { describe, expect, it } from 'vitest';
import { DriftLimiter } from './drift-limiter.js';
import type { QuotaOptions } from './emulator-options.js';
import { EMULATOR_DEFAULTS } from './emulator-options.js';

const quota = (patch: Partial<QuotaOptions>): QuotaOptions => ({ ...EMULATOR_DEFAULTS.quota, model: 'drift', ...patch });
const schedule = quota({
  drift: [
    { atMs: 0, rpm: 600 },
    { atMs: 2000, rpm: 120 },
    { atMs: 4000, rpm: 300 },
  ],
});

/** Offers a request every `stepMs` in [from, to); returns how many were accepted. */
function offer(limiter: DriftLimiter, from: number, to: number, stepMs: number): number {
  let accepted = 0;
  for (let t = from; t < to; t += stepMs) if (limiter.tryAccept(t) === undefined) accepted++;
  return accepted;
}

describe('DriftLimiter', () => {
  it('switches the quota at each step of the schedule, relative to its start', () => {
    const limiter = new DriftLimiter(() => schedule);
    expect(limiter.quotaRpm(0)).toBe(600); // not started: the first step
    expect(limiter.tryAccept(10_000)).toBeUndefined(); // start
    expect(limiter.quotaRpm(11_999)).toBe(600);
    expect(limiter.quotaRpm(12_000)).toBe(120);
    expect(limiter.quotaRpm(14_000)).toBe(300);
    expect(limiter.quotaRpm(99_000)).toBe(300); // the last step holds
    expect(limiter.quotaRpm(5000)).toBe(600); // before the start: the first step
    // 10/s, then 2/s, then 5/s.
    expect(offer(limiter, 10_001, 12_000, 10)).toBe(19); // plus the start request: 20 in 2 s
    expect(offer(limiter, 12_000, 14_000, 10)).toBe(4);
    expect(offer(limiter, 14_000, 16_000, 10)).toBe(10);
  });

  it('enforces rpm / 60 in the trailing second, with no 60 s window and no ramp guard', () => {
    const limiter = new DriftLimiter(() => quota({ drift: [{ atMs: 0, rpm: 180 }] })); // 3/s
    expect([0, 1, 2, 3].map((t) => limiter.tryAccept(t))).toEqual([undefined, undefined, undefined, 'Throttling.RateQuota']);
    expect(limiter.tryAccept(999)).toBe('Throttling.RateQuota');
    expect(limiter.tryAccept(1000)).toBeUndefined(); // the request at 0 left the window
    // 3/s for a whole minute and more: no rpm window stops it.
    expect(offer(limiter, 1001, 70_000, 50)).toBe(3 * 69 - 1);
  });

  it('keeps a fractional per-second quota at its true rate, and at least one request', () => {
    const fractional = new DriftLimiter(() => quota({ drift: [{ atMs: 0, rpm: 90 }] })); // 1.5/s
    expect(offer(fractional, 0, 10_000, 10)).toBe(16); // 2 per 1333 ms: t = 0, 10, 1340, 1350, …
    const slow = new DriftLimiter(() => quota({ drift: [{ atMs: 0, rpm: 30 }] })); // 0.5/s
    expect(offer(slow, 0, 10_000, 10)).toBe(5); // one every 2 s
  });

  it('does not spend quota on throttled requests', () => {
    const limiter = new DriftLimiter(() => quota({ drift: [{ atMs: 0, rpm: 60 }] }));
    expect(limiter.tryAccept(0)).toBeUndefined();
    for (let t = 10; t < 1000; t += 10) expect(limiter.tryAccept(t)).toBe('Throttling.RateQuota');
    expect(limiter.tryAccept(1000)).toBeUndefined();
  });

  it('uses a constant quota.rpm, read live, when the schedule is empty', () => {
    const options = quota({ rpm: 60, drift: [] });
    const limiter = new DriftLimiter(() => options);
    expect([0, 1].map((t) => limiter.tryAccept(t))).toEqual([undefined, 'Throttling.RateQuota']);
    options.rpm = 120;
    expect(limiter.tryAccept(2)).toBeUndefined();
    expect(limiter.capacity(0, 60_000)).toBe(120);
  });

  it('counts capacity as the integral of rpm(t) / 60000 over the interval', () => {
    const limiter = new DriftLimiter(() => schedule);
    // Not started: assumed to start at fromMs.
    expect(limiter.capacity(0, 6000)).toBe(20 + 4 + 10);
    limiter.tryAccept(1000);
    expect(limiter.capacity(1000, 7000)).toBeCloseTo(34, 10);
    expect(limiter.capacity(0, 1000)).toBe(10); // before the start: the first step
    expect(limiter.capacity(2000, 4000)).toBeCloseTo(10 + 2, 10); // 1 s at 10/s, 1 s at 2/s
    expect(limiter.capacity(5000, 65_000)).toBeCloseTo(300, 10);
    expect(limiter.capacity(3000, 3000)).toBe(0);
  });
});
