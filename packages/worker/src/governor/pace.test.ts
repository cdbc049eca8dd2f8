import { describe, expect, it } from 'vitest';
import { applyFeedback, defaultPaceConfig, initialPaceState, paceView, reserve, reserveEach, targetRpm, type Feedback, type PaceConfig, type PaceState } from './pace.js';

const T0 = 1_000_000;

/** Asks for slots as fast as they are granted, from `from` for `seconds`; returns grant times. */
function drive(state: PaceState, config: PaceConfig, from: number, seconds: number): { state: PaceState; grants: number[] } {
  const grants: number[] = [];
  let now = from;
  const until = from + seconds * 1000;
  while (now < until) {
    const { state: next, reservation } = reserve(state, now, config);
    state = next;
    if (reservation.granted) {
      grants.push(reservation.at);
      now = Math.max(now, reservation.at);
    } else {
      now += reservation.retryInMs;
    }
  }
  return { state, grants };
}

/**
 * Calls as fast as slots are granted, from `from` for `seconds`, against an upstream that judges
 * each call (given the earlier accepted calls): undefined accepts it, a feedback throttles it.
 */
function callUpstream(
  state: PaceState,
  config: PaceConfig,
  from: number,
  seconds: number,
  judge: (now: number, accepted: readonly number[]) => Feedback | undefined,
): { state: PaceState; accepted: number[]; throttles: { at: number; feedback: Feedback }[]; now: number } {
  const accepted: number[] = [];
  const throttles: { at: number; feedback: Feedback }[] = [];
  let now = from;
  while (now < from + seconds * 1000) {
    const out = reserve(state, now, config);
    state = out.state;
    if (!out.reservation.granted) {
      now += out.reservation.retryInMs;
      continue;
    }
    now = Math.max(now, out.reservation.at);
    const feedback = judge(now, accepted);
    if (feedback) {
      throttles.push({ at: now, feedback });
      state = applyFeedback(state, now, feedback, config);
    } else {
      accepted.push(now);
    }
  }
  return { state, accepted, throttles, now };
}

function countIn(times: readonly number[], from: number, to: number): number {
  let n = 0;
  for (const t of times) if (t > from && t <= to) n++;
  return n;
}

function maxInWindow(times: number[], windowMs: number): number {
  let best = 0;
  let start = 0;
  for (let end = 0; end < times.length; end++) {
    while ((times[end] as number) - (times[start] as number) >= windowMs) start++;
    best = Math.max(best, end - start + 1);
  }
  return best;
}

describe('pace: spacing (GCRA with reservations)', () => {
  it('spaces slots evenly at 60000/rpm ms, never bunching them', () => {
    const config = { ...defaultPaceConfig(120), growthPerSecond: 0 };
    const state = { ...initialPaceState(config, T0), rpm: 120 };
    const { grants } = drive(state, config, T0, 10);
    const gaps = grants.slice(1).map((t, i) => t - (grants[i] as number));
    expect(gaps.every((g) => Math.abs(g - 500) < 1e-6)).toBe(true);
    expect(maxInWindow(grants, 1000)).toBe(2);
    expect(grants.filter((t) => t < T0 + 10_000)).toHaveLength(20);
  });

  it('reserves at most horizonMs ahead and tells later callers when to ask again', () => {
    const config = { ...defaultPaceConfig(60), growthPerSecond: 0, horizonMs: 2_000 };
    let state: PaceState = { ...initialPaceState(config, T0), rpm: 60 };
    const answers = [];
    for (let i = 0; i < 5; i++) {
      const out = reserve(state, T0, config);
      state = out.state;
      answers.push(out.reservation);
    }
    expect(answers.slice(0, 3)).toEqual([
      { granted: true, at: T0 },
      { granted: true, at: T0 + 1000 },
      { granted: true, at: T0 + 2000 },
    ]);
    expect(answers[3]).toEqual({ granted: false, retryInMs: 1000 });
  });

  it('lets bulk calls reserve only a short way ahead, so a priority call finds an early slot', () => {
    const config = { ...defaultPaceConfig(600), growthPerSecond: 0 }; // a slot every 100 ms
    let state: PaceState = { ...initialPaceState(config, T0), rpm: 600 };
    let bulk = 0;
    for (let i = 0; i < 20; i++) {
      const out = reserve(state, T0, config, false);
      state = out.state;
      if (out.reservation.granted) bulk += 1;
    }
    expect(bulk).toBe(3); // slots at 0, 100 and 200 ms; the rest must ask again
    const urgent = reserve(state, T0, config, true).reservation;
    expect(urgent).toEqual({ granted: true, at: T0 + 300 });
  });

  it('reserveEach grants several callers in one go exactly as one-by-one calls would, priority first', () => {
    const config = { ...defaultPaceConfig(600), growthPerSecond: 0 }; // a slot every 100 ms
    const state: PaceState = { ...initialPaceState(config, T0), rpm: 600 };
    // five bulk callers and one priority caller, the priority one last in line
    const { state: after, reservations } = reserveEach(state, T0, config, [false, false, false, false, false, true]);
    expect(reservations[5]).toEqual({ granted: true, at: T0 }); // served first despite arriving last
    expect(reservations.slice(0, 5)).toEqual([
      { granted: true, at: T0 + 100 },
      { granted: true, at: T0 + 200 },
      { granted: false, retryInMs: 50 }, // past the bulk horizon (250 ms)
      { granted: false, retryInMs: 50 },
      { granted: false, retryInMs: 50 },
    ]);
    expect(after.window.grants).toBe(3);
    // the same as asking one by one in that order
    let oneByOne = state;
    for (const urgent of [true, false, false]) oneByOne = reserve(oneByOne, T0, config, urgent).state;
    expect(after.tat).toBe(oneByOne.tat);
  });

  it('does not let an idle period be spent as a burst', () => {
    const config = { ...defaultPaceConfig(120), growthPerSecond: 0 };
    let state: PaceState = { ...initialPaceState(config, T0), rpm: 120 };
    state = drive(state, config, T0, 2).state;
    const later = T0 + 5_000; // idle for 3 s, under idleMs
    const { grants } = drive(state, config, later, 2);
    expect(maxInWindow(grants, 1000)).toBe(2);
  });
});

describe('pace: adapting (slow start, multiplicative decrease, additive probing)', () => {
  it('starts at half the configured quota and grows while unthrottled, slower than a 2× ramp guard allows', () => {
    const config = defaultPaceConfig(6000);
    const start = initialPaceState(config, T0);
    expect(start.rpm).toBe(3000);
    const { state, grants } = drive(start, config, T0, 15);
    expect(state.rpm).toBeGreaterThan(3000 * 1.1 ** 15 * 0.95);
    // The ramp guard's rule: calls in the last second ≤ 2 × the average second of the ten before.
    for (let t = T0 + 11_000; t <= T0 + 15_000; t += 1_000) {
      const last = grants.filter((g) => g > t - 1_000 && g <= t).length;
      const before = grants.filter((g) => g > t - 11_000 && g <= t - 1_000).length / 10;
      expect(last, `at ${t - T0} ms`).toBeLessThan(2 * before);
    }
  });

  it('on the first quota throttle records the pace of a second ago as the ceiling, drops below it, then settles at headroom × ceiling', () => {
    const config = defaultPaceConfig(600);
    const ceiling = 660 / (1 + config.growthPerSecond);
    let state: PaceState = { ...initialPaceState(config, T0), rpm: 660 };
    state = applyFeedback(state, T0, { kind: 'throttled' }, config);
    expect(state.ceilingRpm).toBeCloseTo(ceiling, 9);
    expect(targetRpm(state, config)).toBeCloseTo(ceiling * config.headroom);
    expect(state.rpm).toBeCloseTo(ceiling * config.headroom * config.decrease);
    state = drive(state, config, T0, 5).state;
    expect(state.rpm).toBeCloseTo(ceiling * config.headroom, 5);
    // a pace that was not growing (held after a ramp throttle) is itself the ceiling
    const held: PaceState = { ...initialPaceState(config, T0), rpm: 660, grownAt: T0 + 2_000 };
    expect(applyFeedback(held, T0, { kind: 'throttled' }, config).ceilingRpm).toBe(660);
  });

  it('counts granted slots per second over the last seconds, across gaps', () => {
    const config = { ...defaultPaceConfig(6000), growthPerSecond: 0 };
    let state: PaceState = { ...initialPaceState(config, T0), rpm: 6000 };
    const grantAt = (ms: number) => {
      const out = reserve(state, T0 + ms, config);
      state = out.state;
      expect(out.reservation).toEqual({ granted: true, at: T0 + ms });
    };
    for (const ms of [0, 100, 1_100, 1_200, 1_300]) grantAt(ms);
    expect(state.sent).toEqual({ second: (T0 + 1_000) / 1000, counts: [3, 2] });
    grantAt(5_000);
    expect(state.sent).toEqual({ second: (T0 + 5_000) / 1000, counts: [1, 0, 0, 0, 3, 2] });
    grantAt(30_000); // longer ago than the window: only this second is left
    expect(state.sent.counts).toEqual([1, ...new Array<number>(config.rampWindowSeconds).fill(0)]);
  });

  it('treats a ramp throttle (BurstRate) as "hold, then grow", not as the quota', () => {
    const config = defaultPaceConfig(600);
    let state: PaceState = { ...initialPaceState(config, T0), rpm: 400 };
    state = applyFeedback(state, T0, { kind: 'throttled', ramp: true }, config);
    expect(state.ceilingRpm).toBeNull();
    expect(state.rpm).toBeCloseTo(360);
    // the pace holds while the guard's memory of the recent past catches up…
    state = drive(state, config, T0, config.rampHoldMs / 1000 - 0.1).state;
    expect(state.rpm).toBeCloseTo(360);
    // a timeout after the decrease cool-down lowers the pace but does not end the hold
    const timedOut = applyFeedback(state, T0 + config.decreaseCooldownMs + 100, { kind: 'timeout' }, config);
    expect(timedOut.rpm).toBeCloseTo(360 * config.timeoutDecrease);
    expect(drive(timedOut, config, T0 + config.decreaseCooldownMs + 100, 0.5).state.rpm).toBeCloseTo(360 * config.timeoutDecrease);
    // …then grows again, past the configured quota, as nothing says it is the limit
    state = drive(state, config, T0 + config.rampHoldMs, 10).state;
    expect(state.rpm).toBeGreaterThan(600);
  });

  it('after a ramp throttle follows the guard\'s rule from idle and reaches the quota without tripping it again', () => {
    // The upstream's ramp guard, as the emulator plays it: a second may hold max(6, 2 × the average
    // second of the ten before it) calls; the quota is 10 a second.
    const config = defaultPaceConfig(600);
    const { state, accepted, throttles } = callUpstream(initialPaceState(config, T0), config, T0, 20, (now, accepted) => {
      const inSecond = countIn(accepted, now - 1_000, now);
      if (inSecond + 1 > 10) return { kind: 'throttled' };
      const baseline = countIn(accepted, now - 11_000, now - 1_000) / 10;
      return inSecond + 1 > Math.max(6, 2 * baseline) ? { kind: 'throttled', ramp: true } : undefined;
    });
    const ramps = throttles.filter((t) => t.feedback.kind === 'throttled' && t.feedback.ramp).map((t) => t.at - T0);
    expect(ramps.length, `ramp throttles at ${ramps.join(', ')} ms`).toBe(1);
    expect(state.rampFloorRpm).toBeNull(); // the ramp ended at the quota
    // The quota is reached 10 s after the start; growing 10% a second after the throttle, held
    // for 3 s, took until ~16 s.
    expect(countIn(accepted, T0 + 10_000, T0 + 11_000)).toBe(10);
  });

  it('with ZIMAGE_RPM too low, a ramp throttle above it keeps following the guard up to the real quota', () => {
    // Configured 300 a minute; the real quota is 600 and the ramp guard's floor 6 a second.
    const config = defaultPaceConfig(300);
    const { accepted, throttles } = callUpstream(initialPaceState(config, T0), config, T0, 20, (now, accepted) => {
      const inSecond = countIn(accepted, now - 1_000, now);
      if (inSecond + 1 > 10) return { kind: 'throttled' };
      const baseline = countIn(accepted, now - 11_000, now - 1_000) / 10;
      return inSecond + 1 > Math.max(6, 2 * baseline) ? { kind: 'throttled', ramp: true } : undefined;
    });
    const firstRamp = throttles.find((t) => t.feedback.kind === 'throttled' && t.feedback.ramp)?.at ?? Number.NaN;
    // From the ramp throttle (~10 s in) the quota is reached within ~5 s; growing 10% a second
    // from there, after a 3 s hold, took ~10 s.
    expect(firstRamp - T0).toBeGreaterThan(8_000);
    expect(countIn(accepted, firstRamp + 5_000, firstRamp + 6_000)).toBeGreaterThanOrEqual(9);
  });

  it('a lone quota throttle while steady dips the pace but keeps the ceiling; a second one within the probe interval lowers it', () => {
    const config = defaultPaceConfig(600);
    const steady = 600 * config.headroom;
    let state: PaceState = { ...initialPaceState(config, T0), rpm: steady, ceilingRpm: 600, lastProbeAt: T0 - config.probeIntervalMs };
    state = applyFeedback(state, T0, { kind: 'throttled' }, config);
    expect(state.ceilingRpm).toBe(600);
    expect(state.rpm).toBeCloseTo(steady * config.decrease);
    state = drive(state, config, T0, 5).state;
    expect(state.rpm).toBeCloseTo(steady, 5);
    state = applyFeedback(state, T0 + 5_000, { kind: 'throttled' }, config);
    expect(state.ceilingRpm).toBeCloseTo(steady, 5);
    // once a probe interval has passed without one, a throttle is lone again
    const later = T0 + 5_000 + config.probeIntervalMs;
    state = drive(state, config, T0 + 5_000, config.probeIntervalMs / 1000).state;
    const ceiling = state.ceilingRpm;
    state = applyFeedback(state, later, { kind: 'throttled' }, config);
    expect(state.ceilingRpm).toBe(ceiling);
  });

  it('decreases once per congestion event, however many 429s arrive together', () => {
    const config = defaultPaceConfig(600);
    let state: PaceState = { ...initialPaceState(config, T0), rpm: 600 };
    for (let i = 0; i < 8; i++) state = applyFeedback(state, T0 + i * 50, { kind: 'throttled' }, config);
    const first = 600 / (1 + config.growthPerSecond);
    expect(state.ceilingRpm).toBeCloseTo(first, 9);
    expect(state.rpm).toBeCloseTo(first * config.headroom * config.decrease);
    expect(state.window.throttles).toBe(8);
    // one later within the probe interval: the ceiling is that pace
    const later = applyFeedback(state, T0 + 3 * config.decreaseCooldownMs, { kind: 'throttled' }, config);
    expect(later.ceilingRpm).toBeCloseTo(first * config.headroom * config.decrease);
    expect(later.rpm).toBeCloseTo(first * config.headroom * config.decrease * config.headroom * config.decrease);
    // one as soon as the cool-down allows: the ceiling is well above the quota, so it steps further
    const backToBack = applyFeedback(state, T0 + config.decreaseCooldownMs + 1, { kind: 'throttled' }, config);
    expect(backToBack.ceilingRpm).toBeCloseTo(first * config.headroom * config.decrease * (1 - 2 * config.probeStep));
  });

  it('honours Retry-After by granting nothing until it has passed', () => {
    const config = defaultPaceConfig(120);
    const state = applyFeedback(initialPaceState(config, T0), T0, { kind: 'throttled', retryAfterMs: 5_000 }, config);
    expect(reserve(state, T0 + 1_000, config).reservation).toEqual({ granted: false, retryInMs: 4_000 });
    expect(reserve(state, T0 + 5_000, config).reservation.granted).toBe(true);
  });

  it('probes the ceiling up additively while steady, to find a quota that grew', () => {
    const config = defaultPaceConfig(600);
    let state: PaceState = { ...initialPaceState(config, T0), rpm: 600 * config.headroom, ceilingRpm: 600, lastProbeAt: T0 };
    state = drive(state, config, T0, 65).state;
    expect(state.ceilingRpm).toBeCloseTo(600 * 1.02 * 1.02, 5);
    expect(state.rpm).toBeCloseTo(600 * 1.02 * 1.02 * config.headroom, 0);
  });

  it('undoes a probe that a throttle follows, and probes less often until one holds', () => {
    const config = defaultPaceConfig(600);
    const at = (state: PaceState, ms: number) => drive(state, config, ms, 0.01).state;
    let state: PaceState = { ...initialPaceState(config, T0), rpm: 600 * config.headroom, ceilingRpm: 600, lastProbeAt: T0 };
    state = at(state, T0 + config.probeIntervalMs); // probe: 612
    expect(state.ceilingRpm).toBeCloseTo(612, 5);
    state = applyFeedback(state, T0 + config.probeIntervalMs + 3_000, { kind: 'throttled' }, config);
    expect(state.ceilingRpm).toBeCloseTo(600, 5);
    expect(state.probeBackoff).toBe(2);
    // the next probe waits twice as long
    state = at(state, T0 + 2 * config.probeIntervalMs + 3_000);
    expect(state.ceilingRpm).toBeCloseTo(600, 5);
    state = at(state, T0 + 3 * config.probeIntervalMs + 3_000);
    expect(state.ceilingRpm).toBeCloseTo(612, 5);
    // this one holds: at the next probe the interval is back to normal
    state = at(state, T0 + 5 * config.probeIntervalMs + 3_000);
    expect(state.probeBackoff).toBe(1);
    expect(state.ceilingRpm).toBeCloseTo(612 * 1.02, 5);
    // a failed probe backs off again; throttles that then lower the ceiling bring the normal interval back
    state = applyFeedback(state, T0 + 5 * config.probeIntervalMs + 5_000, { kind: 'throttled' }, config);
    expect(state.probeBackoff).toBe(2);
    state = applyFeedback(state, T0 + 5 * config.probeIntervalMs + 8_000, { kind: 'throttled' }, config);
    expect(state.ceilingRpm).toBeLessThan(612);
    expect(state.probeBackoff).toBe(1);
  });

  it('converges just under a true quota that is 50% above or below the configured one', () => {
    for (const [configured, truth] of [
      [400, 600],
      [900, 600],
    ] as const) {
      const config = defaultPaceConfig(configured);
      // The upstream throttles any call that would make more than truth/60 in one second.
      const { state, throttles, now } = callUpstream(initialPaceState(config, T0), config, T0, 120, (now, accepted) =>
        countIn(accepted, now - 1_000, now) + 1 > truth / 60 ? { kind: 'throttled' } : undefined,
      );
      const view = paceView(state, now, config);
      expect(view.rpm, `configured ${configured}`).toBeGreaterThan(truth * 0.9);
      expect(view.rpm, `configured ${configured}`).toBeLessThanOrEqual(truth);
      expect(throttles.length, `configured ${configured}`).toBeLessThan(40);
    }
  });

  it('restarts slowly after an idle period', () => {
    const config = defaultPaceConfig(600);
    let state: PaceState = { ...initialPaceState(config, T0), rpm: 600 * config.headroom, ceilingRpm: 600 };
    state = drive(state, config, T0, 1).state;
    const { state: after } = reserve(state, T0 + 1_000 + config.idleMs + 1, config);
    expect(after.rpm).toBeCloseTo((600 * config.headroom) / 2, 5);
  });

  it('reports utilisation and throttle ratio over the last minute', () => {
    const config = { ...defaultPaceConfig(120), growthPerSecond: 0 };
    let state: PaceState = { ...initialPaceState(config, T0), rpm: 120 };
    state = drive(state, config, T0, 30).state;
    state = applyFeedback(state, T0 + 30_000, { kind: 'throttled' }, config);
    const view = paceView(state, T0 + 30_000, config);
    // ~60 grants in 30 s at 2 a second (plus the slots reserved ahead), one throttle.
    expect(view.throttleRatio).toBeGreaterThan(1 / 64);
    expect(view.throttleRatio).toBeLessThan(1 / 58);
    // ~2 grants a second against a sustainable ~117 a minute (headroom × the 120 ceiling).
    expect(view.utilisation).toBeGreaterThan(1.0);
    expect(view.utilisation).toBeLessThan(1.1);
    expect(view.ceilingRpm).toBe(120);
  });

  it('a disabled account grants nothing until enabled', () => {
    const config = defaultPaceConfig(120);
    let state = applyFeedback(initialPaceState(config, T0), T0, { kind: 'disabled', reason: 'UPSTREAM_BILLING' }, config);
    expect(reserve(state, T0 + 10, config).reservation.granted).toBe(false);
    expect(paceView(state, T0, config).disabledReason).toBe('UPSTREAM_BILLING');
    state = applyFeedback(state, T0 + 20, { kind: 'enabled' }, config);
    expect(reserve(state, T0 + 30, config).reservation.granted).toBe(true);
  });
});
