import { describe, expect, it } from 'vitest';
import type { EmulatorOptions, EmulatorOptionsInput } from './emulator-options.js';
import { resolveEmulatorOptions } from './emulator-options.js';
import type { LimiterClock } from './managed-limiter.js';
import { ManagedLimiter } from './managed-limiter.js';

/** A fake clock whose epoch runs 1_700_000_000_000 ms ahead of its monotonic time. */
function fakeClock(): LimiterClock & { t: number } {
  const clock = {
    t: 0,
    monotonic: () => clock.t,
    epoch: () => 1_700_000_000_000 + Math.floor(clock.t), // Date.now() is whole ms
  };
  return clock;
}
const EPOCH = 1_700_000_000_000;

function setup(quota: EmulatorOptionsInput['quota']): { options: { current: EmulatorOptions }; limiter: ManagedLimiter; clock: ReturnType<typeof fakeClock> } {
  const options = { current: resolveEmulatorOptions({ quota, latency: { minMs: 0, maxMs: 0 } }) };
  const clock = fakeClock();
  return { options, limiter: new ManagedLimiter(() => options.current, clock), clock };
}

/** Admits a request at monotonic `t`. */
function admitAt(limiter: ManagedLimiter, clock: { t: number }, t: number): ReturnType<ManagedLimiter['admit']> {
  clock.t = t;
  return limiter.admit(t);
}

describe('ManagedLimiter', () => {
  it('reports counts, start and timeline in epoch ms', () => {
    const { limiter, clock } = setup({ model: 'fixed-window', rpm: 120, windowMs: 1000 }); // 2 per window
    expect(limiter.report.model).toBe('fixed-window');
    expect(limiter.report.startedAt).toBeUndefined();
    const codes = [500, 600, 700, 1500, 1600, 2500].map((t) => admitAt(limiter, clock, t).code);
    expect(codes).toEqual([undefined, undefined, 'Throttling.RateQuota', undefined, undefined, undefined]);
    expect(limiter.report.startedAt).toBe(EPOCH + 500);
    expect(limiter.report.counts()).toEqual({ accepted: 5, throttled: 1 });
    expect(limiter.report.counts(EPOCH + 600, EPOCH + 1500)).toEqual({ accepted: 1, throttled: 1 });
    expect(limiter.report.counts(EPOCH + 600, EPOCH + 1501)).toEqual({ accepted: 2, throttled: 1 });
    const second = Math.floor(EPOCH / 1000);
    expect(limiter.report.timeline(EPOCH, EPOCH + 3000)).toEqual([
      { second, accepted: 2, throttled: 1, quotaRpm: 120 },
      { second: second + 1, accepted: 2, throttled: 0, quotaRpm: 120 },
      { second: second + 2, accepted: 1, throttled: 0, quotaRpm: 120 },
    ]);
    // Windows are aligned to the start (epoch + 500), whatever the epoch's whole seconds.
    expect(limiter.report.capacity(EPOCH, EPOCH + 1500)).toBe(2);
    expect(limiter.report.capacity(EPOCH + 500, EPOCH + 2501)).toBe(6);
  });

  it('maps epoch intervals onto the limiter clock for time-dependent capacity', () => {
    const { limiter, clock } = setup({ model: 'drift', drift: [{ atMs: 0, rpm: 600 }, { atMs: 1000, rpm: 60 }] });
    admitAt(limiter, clock, 250_000); // monotonic 250 s, epoch EPOCH + 250 s
    const start = EPOCH + 250_000;
    expect(limiter.report.startedAt).toBe(start);
    expect(limiter.report.capacity(start, start + 1000)).toBeCloseTo(10, 10);
    expect(limiter.report.capacity(start, start + 2000)).toBeCloseTo(11, 10);
    const [first, second] = limiter.report.timeline(start + 1000, start + 2000);
    expect(first?.quotaRpm).toBe(60);
    expect(second).toBeUndefined();
  });

  it('maps whole-ms epoch intervals exactly, whatever the fraction of the monotonic start', () => {
    // Starts where `(start + 3000) − start` is not 3000 in floating point.
    for (const monotonicStart of [261_981.873_636_585_1, 65_308.208_890_132, 64_698.909_101_366_55]) {
      const { limiter, clock } = setup({ model: 'fixed-window', rpm: 60, windowMs: 1500 }); // 1 per window
      admitAt(limiter, clock, monotonicStart);
      const start = limiter.report.startedAt ?? NaN;
      expect(limiter.report.capacity(start - 5000, start + 3000)).toBe(2);
      expect(limiter.report.capacity(start + 1500, start + 4500)).toBe(2);
    }
  });

  it('frees a concurrency slot exactly once per accepted request', () => {
    const { limiter, clock } = setup({ model: 'concurrency', maxInFlight: 1, rps: Infinity, rpm: Infinity });
    const first = admitAt(limiter, clock, 0);
    expect(first.code).toBeUndefined();
    const refused = admitAt(limiter, clock, 1);
    expect(refused.code).toBe('Throttling');
    refused.done(); // a throttled admission holds nothing
    expect(limiter.unanswered).toBe(1);
    first.done();
    first.done();
    expect(limiter.unanswered).toBe(0);
    const second = admitAt(limiter, clock, 2);
    expect(second.code).toBeUndefined();
    expect(admitAt(limiter, clock, 3).code).toBe('Throttling'); // the double done() freed one slot only
  });

  it('rebuilds on a structural change, resetting the report, and keeps unanswered requests in flight', () => {
    const { options, limiter, clock } = setup({ model: 'concurrency', maxInFlight: 1, rps: Infinity, rpm: Infinity });
    const held = admitAt(limiter, clock, 0);
    expect(held.code).toBeUndefined();

    options.current = { ...options.current, quota: { ...options.current.quota, rpm: 5 } };
    limiter.reconfigure(); // rpm is read live: no rebuild
    expect(limiter.report.counts().accepted).toBe(1);

    options.current = { ...options.current, quota: { ...options.current.quota, maxInFlight: 2, rpm: Infinity } };
    limiter.reconfigure();
    expect(limiter.report.startedAt).toBeUndefined();
    expect(limiter.report.counts()).toEqual({ accepted: 0, throttled: 0 });
    // The new limiter inherited the held request: one slot is left, not two.
    expect(admitAt(limiter, clock, 10).code).toBeUndefined();
    expect(admitAt(limiter, clock, 11).code).toBe('Throttling');
    expect(limiter.report.startedAt).toBe(EPOCH + 10);
    held.done(); // accepted by the old limiter, released in the new one
    expect(admitAt(limiter, clock, 12).code).toBeUndefined();

    options.current = { ...options.current, quota: { ...options.current.quota, model: 'token-bucket' } };
    limiter.reconfigure();
    expect(limiter.report.model).toBe('token-bucket');
  });

  it('keeps the per-second model live across rpm and rps changes, as before', () => {
    const { options, limiter, clock } = setup({ rps: 1, rpm: 100, burst: { enabled: false } });
    expect(admitAt(limiter, clock, 0).code).toBeUndefined();
    expect(admitAt(limiter, clock, 1).code).toBe('Throttling.RateQuota');
    options.current = { ...options.current, quota: { ...options.current.quota, rps: 2 } };
    limiter.reconfigure();
    expect(admitAt(limiter, clock, 2).code).toBeUndefined();
    expect(admitAt(limiter, clock, 3).code).toBe('Throttling.RateQuota'); // the window history was kept
    expect(limiter.report.counts()).toEqual({ accepted: 2, throttled: 2 });
    expect(limiter.report.capacity(EPOCH, EPOCH + 60_000)).toBe(100); // min(rpm 100, 60 × rps 2)
  });

  it('rejects non-finite intervals and overlong timelines', () => {
    const { limiter } = setup({});
    expect(() => limiter.report.capacity(0, Infinity)).toThrow(RangeError);
    expect(() => limiter.report.timeline(0, 2 * 86_400_000)).toThrow(RangeError);
    expect(limiter.report.timeline(0, 0)).toEqual([]);
  });
});
