import { describe, expect, it } from 'vitest';
import type { QuotaOptions } from './emulator-options.js';
import { EMULATOR_DEFAULTS } from './emulator-options.js';
import { QuotaGuard } from './quota.js';

type QuotaPatch = Partial<Omit<QuotaOptions, 'burst'>> & { burst?: Partial<QuotaOptions['burst']> };

const quota = (patch: QuotaPatch = {}): QuotaOptions => ({
  ...EMULATOR_DEFAULTS.quota,
  ...patch,
  burst: { ...EMULATOR_DEFAULTS.quota.burst, ...patch.burst },
});

/** Offers `count` requests spread evenly over [start, start + 1000) ms; returns the outcomes. */
function offerSecond(guard: QuotaGuard, start: number, count: number): Array<string | undefined> {
  return Array.from({ length: count }, (_, i) => guard.tryAccept(start + (i * 1000) / count));
}

describe('QuotaGuard', () => {
  it('enforces rps over a sliding second', () => {
    const guard = new QuotaGuard(() => quota({ rps: 2, rpm: 100, burst: { enabled: false } }));
    expect(guard.tryAccept(0)).toBeUndefined();
    expect(guard.tryAccept(10)).toBeUndefined();
    expect(guard.tryAccept(999)).toBe('Throttling.RateQuota');
    expect(guard.tryAccept(1000)).toBeUndefined(); // the request at 0 left the window
    expect(guard.tryAccept(1005)).toBe('Throttling.RateQuota');
  });

  it('enforces rpm over a sliding minute, counting accepted requests only', () => {
    const guard = new QuotaGuard(() => quota({ rps: Infinity, rpm: 3, burst: { enabled: false } }));
    expect(offerSecond(guard, 0, 5)).toEqual([undefined, undefined, undefined, 'Throttling.RateQuota', 'Throttling.RateQuota']);
    expect(guard.tryAccept(59_999)).toBe('Throttling.RateQuota');
    expect(guard.tryAccept(60_000)).toBeUndefined(); // the first accepted request is 60 s old
  });

  it('starts a cold client at the burst floor and lets it ramp as the baseline grows', () => {
    // A strict guard: floor 1/s; factor 2 over a 10 s baseline.
    const guard = new QuotaGuard(() => quota({ rps: 2, rpm: 1000, burst: { enabled: true, floorPerSecond: 1 } }));
    expect(offerSecond(guard, 0, 2)).toEqual([undefined, 'Throttling.BurstRate']);
    // One per second for 10 s builds a baseline of 1/s, which then allows 2 × 1 = 2/s.
    for (let s = 1; s <= 10; s++) expect(guard.tryAccept(s * 1000)).toBeUndefined();
    expect(offerSecond(guard, 11_000, 2)).toEqual([undefined, undefined]);
  });

  it('flags a ramp even far below the rps limit, and not when disabled', () => {
    const options = quota({ rps: 100, rpm: 10_000, burst: { enabled: true, floorPerSecond: 3, factor: 2 } });
    const guard = new QuotaGuard(() => options);
    // Baseline: 10 s at 2/s (t = 0, 500, …, 9500) → average 2/s → 4/s allowed.
    for (let s = 0; s < 10; s++) expect(offerSecond(guard, s * 1000, 2)).toEqual([undefined, undefined]);
    const ramp = [10_500, 10_600, 10_700, 10_800, 10_900].map((t) => guard.tryAccept(t));
    expect(ramp).toEqual([undefined, undefined, undefined, undefined, 'Throttling.BurstRate']);
    options.burst.enabled = false;
    expect(guard.tryAccept(10_900)).toBeUndefined();
  });

  it('reports the sustainable rate as its capacity and quota', () => {
    const options = quota({ rps: 2, rpm: 120 });
    const guard = new QuotaGuard(() => options);
    expect(guard.model).toBe('per-second');
    expect(guard.capacity(0, 60_000)).toBe(120);
    expect(guard.capacity(1000, 31_000)).toBe(60);
    expect(guard.capacity(5, 5)).toBe(0);
    options.rps = 1; // the per-second limit now binds: 60/min
    expect(guard.capacity(0, 60_000)).toBe(60);
    expect(guard.quotaRpm()).toBe(60);
    expect(guard.startedAt).toBeUndefined();
    guard.tryAccept(42);
    guard.tryAccept(50);
    expect(guard.startedAt).toBe(42);
  });

  it('never throttles with Infinity limits and the derived floor', () => {
    const guard = new QuotaGuard(() => quota({ rps: Infinity, rpm: Infinity }));
    expect(offerSecond(guard, 0, 10_000).every((r) => r === undefined)).toBe(true);
  });
});
