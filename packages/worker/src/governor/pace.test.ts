import { describe, expect, it } from 'vitest';
import {
  applyFeedback,
  currentBudget,
  defaultPaceConfig,
  initialPaceState,
  paceView,
  reserve,
  reserveEach,
  targetRpm,
  type Feedback,
  type LeaseInfo,
  type PaceConfig,
  type PaceState,
  type Reservation,
  type ReserveRequest,
} from './pace.js';
import { emptySendLog, recordEvent, type SendLog } from './send-log.js';

const T0 = 1_700_000_000_000; // on a second boundary
const FAR = 3_600_000; // an hour: "never" within a test

let leaseSeq = 0;
const nextLeaseId = () => `lease-${++leaseSeq}`;

/** A pace that neither grows nor probes: slots exactly `60000 / rpm` apart, budget `rpm`. */
function fixedPace(rpm: number, overrides: Partial<PaceConfig> = {}): { config: PaceConfig; state: PaceState } {
  const config: PaceConfig = { ...defaultPaceConfig(rpm), growthPerSecond: 0, headroom: 1, maxRpm: rpm, ...overrides };
  return { config, state: { ...initialPaceState(config, T0), rpm } };
}

/** Settled at `ceiling` (pace = headroom × ceiling), no ceiling probe due before `FAR`. */
function settled(config: PaceConfig, ceiling: number, at = T0): PaceState {
  return { ...initialPaceState(config, at), ceilingRpm: ceiling, rpm: ceiling * config.headroom, nextPaceProbeAt: at + FAR };
}

function ask(state: PaceState, now: number, config: PaceConfig, urgent = true, leaseId = nextLeaseId()): { state: PaceState; reservation: Reservation } {
  return reserve(state, now, config, { urgent, leaseId });
}

/** Reserves a slot that must be granted. */
function grant(state: PaceState, now: number, config: PaceConfig, urgent = true): { state: PaceState; at: number; lease: LeaseInfo } {
  const { state: next, reservation } = ask(state, now, config, urgent);
  if (!reservation.granted) throw new Error(`refused at ${now - T0} ms: retry in ${reservation.retryInMs} ms`);
  return { state: next, at: reservation.at, lease: reservation.lease };
}

interface Driven {
  state: PaceState;
  grants: number[];
  leases: LeaseInfo[];
  refusals: { at: number; retryInMs: number }[];
  now: number;
}

/**
 * One caller asking for slots as fast as they are granted, from `from` for `seconds`, against an
 * instant upstream: each call is answered at its slot by `answer` (ok by default; undefined: no
 * report, the lease stays in flight).
 */
function drive(
  state: PaceState,
  config: PaceConfig,
  from: number,
  seconds: number,
  options: { urgent?: boolean; answer?: (lease: LeaseInfo, at: number, state: PaceState) => Feedback | undefined } = {},
): Driven {
  const answer = options.answer ?? ((lease: LeaseInfo) => ({ kind: 'ok' as const, lease }));
  const grants: number[] = [];
  const leases: LeaseInfo[] = [];
  const refusals: { at: number; retryInMs: number }[] = [];
  let now = from;
  while (now < from + seconds * 1000) {
    const out = ask(state, now, config, options.urgent ?? true);
    state = out.state;
    if (!out.reservation.granted) {
      refusals.push({ at: now, retryInMs: out.reservation.retryInMs });
      now += out.reservation.retryInMs;
      continue;
    }
    const { at, lease } = out.reservation;
    grants.push(at);
    leases.push(lease);
    now = Math.max(now, at);
    const feedback = answer(lease, at, state);
    if (feedback) state = applyFeedback(state, now, feedback, config);
  }
  return { state, grants, leases, refusals, now };
}

function countIn(times: readonly number[], from: number, to: number): number {
  let n = 0;
  for (const t of times) if (t >= from && t < to) n++;
  return n;
}

/** Most events in any window of `windowMs` (to the millisecond, as a limiter counts). */
function maxInWindow(times: readonly number[], windowMs: number): number {
  const sorted = [...times].sort((a, b) => a - b);
  let best = 0;
  let start = 0;
  for (let end = 0; end < sorted.length; end++) {
    while ((sorted[end] as number) - (sorted[start] as number) >= windowMs) start++;
    best = Math.max(best, end - start + 1);
  }
  return best;
}

/** Most events in any `seconds` consecutive whole seconds. */
function maxInWholeSeconds(times: readonly number[], seconds: number): number {
  const perSecond = new Map<number, number>();
  for (const t of times) perSecond.set(Math.floor(t / 1000), (perSecond.get(Math.floor(t / 1000)) ?? 0) + 1);
  let best = 0;
  for (const last of perSecond.keys()) {
    let sum = 0;
    for (let s = last - seconds + 1; s <= last; s++) sum += perSecond.get(s) ?? 0;
    best = Math.max(best, sum);
  }
  return best;
}

describe('pace: spacing (GCRA with reservations)', () => {
  it('spaces slots evenly at 60000/rpm ms, never bunching them', () => {
    const { config, state } = fixedPace(120);
    const { grants } = drive(state, config, T0, 10);
    const gaps = grants.slice(1).map((t, i) => t - (grants[i] as number));
    expect(gaps.every((g) => g === 500)).toBe(true);
    expect(maxInWindow(grants, 1000)).toBe(2);
    expect(countIn(grants, T0, T0 + 10_000)).toBe(20);
  });

  it('reserves at most horizonMs ahead and tells a later caller when to ask again', () => {
    const { config, state: start } = fixedPace(60, { horizonMs: 2_000 });
    let state = start;
    const answers: Reservation[] = [];
    for (let i = 0; i < 4; i++) {
      const out = ask(state, T0, config);
      state = out.state;
      answers.push(out.reservation);
    }
    expect(answers.map((r) => (r.granted ? r.at - T0 : 'refused'))).toEqual([0, 1_000, 2_000, 'refused']);
    expect(answers[3]).toEqual({ granted: false, retryInMs: 1_000 });
    expect(state.window.grants).toBe(3);
  });

  it('lets bulk calls reserve only bulkHorizonMs ahead, so a priority call finds an early slot', () => {
    const { config, state: start } = fixedPace(600); // a slot every 100 ms
    let state = start;
    let bulk = 0;
    for (let i = 0; i < 20; i++) {
      const out = ask(state, T0, config, false);
      state = out.state;
      if (out.reservation.granted) bulk += 1;
    }
    expect(bulk).toBe(3); // slots at 0, 100 and 200 ms; the rest must ask again
    expect(ask(state, T0, config, false).reservation).toEqual({ granted: false, retryInMs: 50 });
    expect(ask(state, T0, config, true).reservation).toMatchObject({ granted: true, at: T0 + 300 });
  });

  it('reserveEach grants several callers in one go exactly as one-by-one calls would, priority first', () => {
    const { config, state } = fixedPace(600); // a slot every 100 ms
    const requests: ReserveRequest[] = ['b1', 'b2', 'b3', 'b4', 'b5', 'u1'].map((id) => ({ urgent: id.startsWith('u'), leaseId: id }));
    const { state: after, reservations } = reserveEach(state, T0, config, requests);
    // served first despite arriving last
    expect(reservations[5]).toMatchObject({ granted: true, at: T0, lease: { id: 'u1', inFlight: 1 } });
    expect(reservations.slice(0, 5)).toEqual([
      { granted: true, at: T0 + 100, lease: expect.objectContaining({ id: 'b1', inFlight: 2 }) },
      { granted: true, at: T0 + 200, lease: expect.objectContaining({ id: 'b2', inFlight: 3 }) },
      { granted: false, retryInMs: 50 }, // past the bulk horizon (250 ms)
      { granted: false, retryInMs: 50 },
      { granted: false, retryInMs: 50 },
    ]);
    expect(after.window.grants).toBe(3);
    // the same as asking one by one, priority first
    let oneByOne = state;
    for (const i of [5, 0, 1, 2, 3, 4]) oneByOne = reserve(oneByOne, T0, config, requests[i] as ReserveRequest).state;
    expect(after).toEqual(oneByOne);
    expect(reserveEach(state, T0, config, []).state).toEqual(state);
  });

  it('does not let a short idle period be spent as a burst', () => {
    const { config, state: start } = fixedPace(120);
    const { state } = drive(start, config, T0, 2);
    const later = T0 + 5_000; // idle for 3 s, under idleMs
    const { grants } = drive(state, config, later, 2);
    expect(grants[0]).toBe(later);
    expect(maxInWindow(grants, 1000)).toBe(2);
  });

  it('restarts at half the target after idleMs without calls', () => {
    const config = defaultPaceConfig(600);
    let state = settled(config, 600);
    state = drive(state, config, T0, 1).state;
    expect(state.rpm).toBeCloseTo(588, 9);
    const after = grant(state, T0 + 1_000 + config.idleMs + 1, config).state;
    expect(after.rpm).toBeCloseTo(294, 9);
    // …and not after a shorter pause
    expect(grant(state, T0 + config.idleMs - 1_000, config).state.rpm).toBeCloseTo(588, 9);
  });

  it('starts at half the configured quota and grows growthPerSecond a second while nothing is throttled', () => {
    const config = defaultPaceConfig(600);
    const start = initialPaceState(config, T0);
    expect(start.rpm).toBe(300);
    expect(start.ceilingRpm).toBe(600);
    expect(start.budgetRpm).toBe(600);
    expect(grant(start, T0 + 5_000, config).state.rpm).toBeCloseTo(300 * 1.1 ** 5, 6);
    // never past the target (headroom × ceiling) by growing
    const { state } = drive({ ...start, nextPaceProbeAt: T0 + FAR }, config, T0, 10);
    expect(state.rpm).toBeCloseTo(588, 9);
  });
});

/**
 * A log holding `perSecond` calls sent (and accepted) in each of the `seconds` whole seconds before
 * the one holding `now`: traffic the pace state remembers from before the test.
 */
function sentBefore(now: number, perSecond: number, seconds: number): SendLog {
  const counts = [0, ...new Array<number>(seconds).fill(perSecond)];
  return { second: Math.floor(now / 1000), sent: counts, accepted: [...counts], throttled: [] };
}

describe('pace: the budget (calls in any trailing 60 s)', () => {
  it('refuses a call that would make the trailing 61 whole seconds exceed the budget', () => {
    const config = { ...defaultPaceConfig(120), budgetProbeIntervalMs: FAR };
    // 120 calls went out in the 30 s before (a faster pace, the budget since cut)
    const state: PaceState = { ...settled(config, 120), log: sentBefore(T0, 4, 30) };
    const { grants, refusals } = drive(state, config, T0, 100);
    expect(countIn(grants, T0, T0 + 31_000)).toBe(0);
    expect(countIn(grants, T0 + 31_000, T0 + 32_000)).toBeGreaterThan(0);
    // with the 120 calls before, never more than the budget in 61 whole seconds, nor in 60 s
    const before = Array.from({ length: 120 }, (_, i) => T0 - 30_000 + Math.floor(i / 4) * 1000);
    expect(maxInWholeSeconds([...before, ...grants], 61)).toBe(120);
    expect(maxInWindow([...before, ...grants], 60_000)).toBeLessThanOrEqual(120);
    // a refused caller is told to come back at the next second boundary (rounded up to the ms)
    const budgetRefusals = refusals.filter((r) => r.at < T0 + 30_000);
    expect(budgetRefusals.length).toBeGreaterThanOrEqual(29);
    for (const r of budgetRefusals) {
      expect((r.at + r.retryInMs) % 1000).toBeLessThan(1);
      expect(r.retryInMs).toBeLessThanOrEqual(1_000);
    }
  });

  it('counts the slot\'s whole second and the 60 before it, so a limiter counting to the millisecond is never overrun', () => {
    const config = { ...defaultPaceConfig(60), budgetProbeIntervalMs: FAR };
    const log = emptySendLog(T0);
    for (const ms of [900, 950, 999]) recordEvent(log, 'sent', T0 + ms); // three in the second T0
    const state: PaceState = { ...initialPaceState(config, T0), budgetRpm: 3, log };
    const at = (ms: number) => ask(state, T0 + ms, config).reservation;
    expect(at(60_000)).toEqual({ granted: false, retryInMs: 1_000 }); // 60.000 s after T0 + 0.9 s is < 60 s
    expect(at(60_999)).toEqual({ granted: false, retryInMs: 1 });
    expect(at(61_000)).toMatchObject({ granted: true, at: T0 + 61_000 });
  });

  it('tells a call with its slot ahead to come back at the second boundary after the slot', () => {
    const config = { ...defaultPaceConfig(60), budgetProbeIntervalMs: FAR };
    const log = emptySendLog(T0);
    recordEvent(log, 'sent', T0 + 100);
    const state: PaceState = { ...initialPaceState(config, T0), budgetRpm: 1, log, tat: T0 + 1_100 };
    // the next slot, at T0 + 1.1 s, would be over the budget: come back when that second has passed
    expect(ask(state, T0 + 300, config).reservation).toEqual({ granted: false, retryInMs: 1_700 });
  });

  it('never paces faster than the budget spread evenly, whatever the ceiling; a budget probe by twice its step, so the step fills', () => {
    const config = defaultPaceConfig(600);
    const state = { ...settled(config, config.maxRpm), budgetProbe: null };
    expect(targetRpm(state, config)).toBeCloseTo(600 * config.headroom, 9);
    expect(targetRpm({ ...state, budgetRpm: 700 }, config)).toBeCloseTo(700 * config.headroom, 9);
    expect(targetRpm({ ...state, budgetProbe: { step: 0.05, fromRpm: 600, since: T0, lastExcessAt: 0 } }, config)).toBeCloseTo(660 * config.headroom, 9);
    expect(targetRpm({ ...state, ceilingRpm: 500 }, config)).toBeCloseTo(500 * config.headroom, 9);
    const { grants } = drive(state, config, T0, 30);
    expect(maxInWindow(grants, 1_000)).toBeLessThanOrEqual(10);
  });

  it('currentBudget adds a running probe\'s step and never passes maxRpm', () => {
    const config = defaultPaceConfig(600);
    const state = initialPaceState(config, T0);
    expect(currentBudget(state, config)).toBe(600);
    expect(currentBudget({ ...state, budgetProbe: { step: 0.05, fromRpm: 600, since: T0, lastExcessAt: 0 } }, config)).toBeCloseTo(630, 9);
    expect(currentBudget({ ...state, budgetRpm: 1_700, budgetProbe: { step: 0.4, fromRpm: 1_700, since: T0, lastExcessAt: 0 } }, config)).toBe(1_800);
  });
});

/** A budget probe of `step` from `fromRpm`, started at `since`. */
const probeOf = (fromRpm: number, step: number, since = T0) => ({ step, fromRpm, since, lastExcessAt: 0 });

/** A lease as a report carries it (not among the state's leases: only what it says counts). */
const leaseAt = (count: number, budgetRpm: number, inFlight = 1): LeaseInfo => ({ id: `report-${count}-${budgetRpm}`, inFlight, count, budgetRpm });

describe('pace: budget probes', () => {
  it('starts a budget probe only after budgetProbeIntervalMs, with the budget full and callers waiting', () => {
    const config = defaultPaceConfig(120);
    const interval = config.budgetProbeIntervalMs;
    // callers always waiting; the pace reaches the budget's within seconds
    const early = drive(initialPaceState(config, T0), config, T0, interval / 1000 - 0.5);
    expect(early.state.rpm).toBeCloseTo(120 * config.headroom, 9);
    expect(early.state.budgetProbe).toBeNull();
    const started = ask(early.state, T0 + interval, config);
    expect(started.state.budgetProbe).toEqual({ step: config.budgetStep, fromRpm: 120, since: T0 + interval, lastExcessAt: 0 });
    expect(currentBudget(started.state, config)).toBeCloseTo(126, 9);
    expect(ask(early.state, T0 + interval - 1, config).state.budgetProbe).toBeNull();
    // a pace held below the budget by a lower ceiling does not fill it: no probe
    const lower = drive(settled(config, 100), config, T0, interval / 1000 + 10);
    expect(lower.state.budgetProbe).toBeNull();
    // a budget that refused a caller lately is full, even with the pace below it
    const remembered: PaceState = { ...settled(config, 100), log: sentBefore(T0, 4, 30), nextBudgetProbeAt: T0 };
    const refusedOnce = ask(remembered, T0, config);
    expect(refusedOnce.reservation.granted).toBe(false);
    expect(ask(refusedOnce.state, T0 + 100, config).state.budgetProbe).toMatchObject({ fromRpm: 120, since: T0 + 100 });
    // nor does a budget that was just full (a caller refused by it) with the interval not yet over
    const refused = ask({ ...settled(config, 120), budgetFullAt: T0 + interval - 1_000 }, T0 + interval - 500, config);
    expect(refused.state.budgetProbe).toBeNull();
  });

  it('starts no budget probe while nobody waits, however full the budget', () => {
    const config = defaultPaceConfig(120);
    let state: PaceState = { ...settled(config, 120), nextBudgetProbeAt: T0 }; // a probe due
    // the pace at the budget's, each caller arriving after its slot (every 600 ms, a slot every ~510 ms)
    for (let t = T0; t < T0 + 10_000; t += 600) state = grant(state, t, config).state;
    expect(state.lastLimitedAt).toBe(0);
    expect(state.budgetProbe).toBeNull();
    // two callers at once: the second waits, and the next ask starts the probe
    const first = grant(state, T0 + 10_200, config);
    const second = grant(first.state, T0 + 10_200, config);
    expect(second.at).toBeGreaterThan(T0 + 10_200);
    expect(second.state.budgetProbe).toBeNull();
    expect(ask(second.state, T0 + 10_300, config).state.budgetProbe).not.toBeNull();
  });

  it('spaces a probe\'s excess calls at least probeSpacingMs apart and raises the budget to each accepted one\'s count', () => {
    const config = { ...defaultPaceConfig(1_200), budgetProbeIntervalMs: FAR }; // a slot every ~51 ms
    // the budget full: 1200 calls in the last 12 s; a probe of 5% running
    const state: PaceState = { ...settled(config, 1_200), log: sentBefore(T0, 100, 12), budgetProbe: probeOf(1_200, 0.05) };
    const probing = drive(state, config, T0, 3);
    const excess = probing.leases.filter((l) => l.count > 1_200);
    expect(excess).toHaveLength(probing.leases.length);
    expect(excess.length).toBeGreaterThanOrEqual(25);
    expect(excess.map((l) => l.count)).toEqual(excess.map((_, i) => 1_201 + i));
    for (let i = 1; i < probing.grants.length; i++) expect((probing.grants[i] as number) - (probing.grants[i - 1] as number)).toBeGreaterThanOrEqual(config.probeSpacingMs);
    expect(probing.state.budgetRpm).toBe(1_200 + excess.length);
    // asked 30 ms after an excess call, a caller waits the remaining 70 ms
    const last = probing.grants.at(-1) as number;
    expect(ask(probing.state, last + 30, config).reservation).toEqual({ granted: false, retryInMs: Math.ceil(last + config.probeSpacingMs - (last + 30)) });
    // without a probe, the same calls are refused at the next second boundary
    expect(ask({ ...state, budgetProbe: null }, T0 + 100, config).reservation).toEqual({ granted: false, retryInMs: 900 });
  });

  it('raises the budget only for an excess call that was accepted, with its lease', () => {
    const config = defaultPaceConfig(1_200);
    const state: PaceState = { ...settled(config, 1_200), budgetProbe: probeOf(1_200, 0.05) };
    const lease = leaseAt(1_210, 1_200);
    expect(applyFeedback(state, T0, { kind: 'ok', lease }, config).budgetRpm).toBe(1_210);
    expect(applyFeedback(state, T0, { kind: 'ok' }, config).budgetRpm).toBe(1_200);
    expect(applyFeedback(state, T0, { kind: 'released', lease }, config).budgetRpm).toBe(1_200);
    expect(applyFeedback(state, T0, { kind: 'timeout', lease }, config).budgetRpm).toBe(1_200);
    expect(applyFeedback(state, T0, { kind: 'ok', lease: leaseAt(1_190, 1_200) }, config).budgetRpm).toBe(1_200);
    // no probe, no raise
    expect(applyFeedback({ ...state, budgetProbe: null }, T0, { kind: 'ok', lease }, config).budgetRpm).toBe(1_200);
  });

  it('doubles the probe\'s step once the whole step was taken, up to maxBudgetStep', () => {
    const config = defaultPaceConfig(1_200);
    let state: PaceState = { ...settled(config, 1_200), budgetProbe: probeOf(1_200, 0.05) };
    const accept = (count: number) => (state = applyFeedback(state, T0, { kind: 'ok', lease: leaseAt(count, state.budgetRpm) }, config));
    accept(1_259);
    expect(state.budgetProbe).toMatchObject({ step: 0.05, fromRpm: 1_200 });
    accept(1_260);
    expect(state.budgetProbe).toMatchObject({ step: 0.1, fromRpm: 1_260 });
    expect(state.nextBudgetStep).toBe(0.1);
    accept(1_386);
    expect(state.budgetProbe).toMatchObject({ step: 0.2, fromRpm: 1_386 });
    accept(1_664);
    expect(state.budgetProbe).toMatchObject({ step: 0.4, fromRpm: 1_664 });
    accept(2_330);
    expect(state.budgetProbe?.step).toBe(config.maxBudgetStep);
    expect(state.nextBudgetStep).toBe(config.maxBudgetStep);
    expect(state.budgetRpm).toBe(2_330);
    // never above maxRpm
    accept(5_000);
    expect(state.budgetRpm).toBe(config.maxRpm);
  });

  it('reads a throttle at the budget\'s edge, at a count above any accepted lately, as the window\'s: the budget is that count − 1, the probe ends and backs off', () => {
    const config = defaultPaceConfig(1_200);
    let state: PaceState = { ...settled(config, 1_200), budgetProbe: probeOf(1_200, 0.05) };
    for (const count of [1_201, 1_230, 1_260, 1_290]) state = applyFeedback(state, T0, { kind: 'ok', lease: leaseAt(count, state.budgetRpm) }, config);
    expect(state.budgetProbe).toMatchObject({ step: 0.1 });
    const at = T0 + 1_000;
    const after = applyFeedback(state, at, { kind: 'throttled', lease: leaseAt(1_291, 1_290) }, config);
    expect(after.budgetRpm).toBe(1_290);
    expect(after.budgetProbe).toBeNull();
    expect(after.nextBudgetStep).toBe(config.budgetStep);
    expect(after.budgetBackoff).toBe(2);
    expect(after.nextBudgetProbeAt).toBe(at + 2 * config.budgetProbeIntervalMs);
    // the window's throttle says nothing of the per-second rate
    expect(after.ceilingRpm).toBe(state.ceilingRpm);
    expect(after.rpm).toBe(state.rpm);
    expect(after.lastRateDecreaseAt).toBe(0);
    // without a probe, at a count above those accepted lately: the budget comes down to that count − 1
    const quiet: PaceState = { ...settled(config, 1_200), okHigh: { ...settled(config, 1_200).okHigh, count: 1_150 } };
    const cut = applyFeedback(quiet, at, { kind: 'throttled', lease: leaseAt(1_180, 1_200) }, config);
    expect(cut.budgetRpm).toBe(1_179);
    expect(cut.budgetBackoff).toBe(1);
    expect(cut.nextBudgetProbeAt).toBe(at + config.budgetRecoveryIntervalMs);
  });

  it('does not read a throttle at a count accepted lately, or well below the budget\'s edge, as the window\'s', () => {
    const config = defaultPaceConfig(1_200);
    let state: PaceState = { ...settled(config, 1_200), budgetProbe: probeOf(1_200, 0.05) };
    state = applyFeedback(state, T0, { kind: 'ok', lease: leaseAt(1_240, 1_200) }, config);
    const edge = leaseAt(1_230, 1_200); // at the edge of the budget it was granted at, but 1240 went through
    expect(edge.count).toBeGreaterThanOrEqual(config.windowEdge * edge.budgetRpm);
    const accepted = applyFeedback(state, T0 + 1_000, { kind: 'throttled', lease: edge }, config);
    expect(accepted.budgetRpm).toBe(1_240);
    expect(accepted.budgetProbe).not.toBeNull();
    expect(accepted.lastRateDecreaseAt).toBe(T0 + 1_000); // read as the per-second rate's
    const below = applyFeedback(settled(config, 1_200), T0, { kind: 'throttled', lease: leaseAt(1_000, 1_200) }, config);
    expect(below.budgetRpm).toBe(1_200);
    expect(below.lastRateDecreaseAt).toBe(T0);
  });

  it('ends a budget probe a minute after the last excess call it got accepted, keeping what it raised', () => {
    const config = defaultPaceConfig(1_200);
    let state: PaceState = { ...settled(config, 1_200), budgetProbe: probeOf(1_200, 0.05) };
    state = applyFeedback(state, T0 + 1_000, { kind: 'ok', lease: leaseAt(1_220, 1_200) }, config);
    expect(ask(state, T0 + 61_000, config).state.budgetProbe).not.toBeNull();
    const later = T0 + 61_001;
    const after = ask(state, later, config).state;
    expect(after.budgetProbe).toBeNull();
    expect(after.budgetRpm).toBe(1_220);
    expect(after.nextBudgetProbeAt).toBe(later + config.budgetProbeIntervalMs);
    // an excess call answered after the probe ended raises nothing
    expect(applyFeedback(after, later + 10, { kind: 'ok', lease: leaseAt(1_230, 1_220) }, config).budgetRpm).toBe(1_220);
  });

  it('below the configured quota, a recovery probe waits budgetRecoveryIntervalMs and reaches back to the quota, not beyond', () => {
    const config = defaultPaceConfig(120);
    // a window throttle at 120 (119 accepted lately): the window's limit is 119
    let state: PaceState = { ...settled(config, 120), okHigh: { ...settled(config, 120).okHigh, count: 119 } };
    state = applyFeedback(state, T0, { kind: 'throttled', lease: leaseAt(120, 120) }, config);
    expect(state.budgetRpm).toBe(119);
    expect(currentBudget(state, config)).toBe(119);
    expect(state.nextBudgetProbeAt).toBe(T0 + config.budgetRecoveryIntervalMs);
    expect(config.budgetRecoveryIntervalMs).toBeLessThan(config.budgetProbeIntervalMs);
    // callers waiting at the budget's pace
    const early = drive(state, config, T0, config.budgetRecoveryIntervalMs / 1000 - 0.5);
    expect(early.state.budgetProbe).toBeNull();
    const recovering = drive(early.state, config, early.now, 1).state;
    expect(recovering.budgetProbe).not.toBeNull();
    expect(currentBudget(recovering, config)).toBeCloseTo(120, 9);
    // an accepted call at the quota ends it: above the quota, probing starts small and waits again
    const at = T0 + 20_000;
    const back = applyFeedback(recovering, at, { kind: 'ok', lease: leaseAt(120, 119) }, config);
    expect(back.budgetRpm).toBe(120);
    expect(back.budgetProbe).toBeNull();
    expect(back.nextBudgetStep).toBe(config.budgetStep);
    expect(back.nextBudgetProbeAt).toBe(at + config.budgetProbeIntervalMs);
  });
});

describe('pace: per-second throttles', () => {
  it('reads a throttle well below the budget as the per-second rate\'s: the ceiling comes down to the pace, the pace by `decrease`', () => {
    const config = defaultPaceConfig(600);
    const { state, at, lease } = grant(settled(config, 600), T0, config);
    expect(state.rpm).toBeCloseTo(588, 9);
    const after = applyFeedback(state, at + 100, { kind: 'throttled', lease }, config);
    expect(after.ceilingRpm).toBeCloseTo(588, 9);
    expect(after.rpm).toBeCloseTo(588 * 0.98 * config.decrease, 9);
    expect(after.budgetRpm).toBe(600);
    expect(after.inFlightCap).toBeNull();
    expect(after.lastRateDecreaseAt).toBe(at + 100);
    // new slots follow the new spacing
    expect(after.tat).toBeCloseTo(at + 100 + 60_000 / after.rpm, 6);
  });

  it('while the pace grows takes the pace of a second before as the ceiling; a pace held after a ramp throttle is the ceiling itself', () => {
    const config = defaultPaceConfig(600);
    const growing = { ...settled(config, 600), rpm: 400 };
    const after = applyFeedback(growing, T0 + 100, { kind: 'throttled' }, config);
    expect(after.ceilingRpm).toBeCloseTo(400 / (1 + config.growthPerSecond), 9);
    expect(after.rpm).toBeCloseTo((400 / 1.1) * 0.98 * config.decrease, 9);
    const held = { ...growing, grownAt: T0 + 2_000 };
    expect(applyFeedback(held, T0 + 100, { kind: 'throttled' }, config).ceilingRpm).toBe(400);
    // never raises the ceiling
    expect(applyFeedback({ ...held, rpm: 700, ceilingRpm: 650 }, T0 + 100, { kind: 'throttled' }, config).ceilingRpm).toBe(650);
  });

  it('decreases once per decreaseCooldownMs, however many 429s arrive together', () => {
    const config = defaultPaceConfig(600);
    const start = { ...settled(config, 600), rpm: 500 };
    const once = applyFeedback(start, T0, { kind: 'throttled' }, config);
    let state = start;
    for (let i = 0; i < 8; i++) state = applyFeedback(state, T0 + i * 50, { kind: 'throttled' }, config);
    expect(state.rpm).toBe(once.rpm);
    expect(state.ceilingRpm).toBe(once.ceilingRpm);
    expect(state.lastDecreaseAt).toBe(T0);
    expect(state.window.throttles).toBe(8);
    // and a timeout within the cool-down says nothing new either
    expect(applyFeedback(state, T0 + 1_000, { kind: 'timeout' }, config).rpm).toBe(once.rpm);
  });

  it('when throttles persist after the cool-down, undoes the ceiling raises of the last paceUndoMs and steps the ceiling down by `decrease`', () => {
    const config = defaultPaceConfig(600);
    let state: PaceState = {
      ...settled(config, 700),
      budgetRpm: 700, // learnt by budget probes
      paceRaises: [
        { at: T0 - 40_000, fromRpm: 500 }, // older than paceUndoMs by the time the throttles come
        { at: T0 - 20_000, fromRpm: 600 },
      ],
    };
    state = drive(state, config, T0, 3).state;
    expect(state.paceRaises).toEqual([{ at: T0 - 20_000, fromRpm: 600 }]);
    state = applyFeedback(state, T0 + 3_000, { kind: 'throttled' }, config);
    expect(state.ceilingRpm).toBeCloseTo(686, 9); // the first: the pace
    state = drive(state, config, T0 + 3_000, 3).state;
    const rpm = state.rpm;
    expect(rpm).toBeGreaterThan(600);
    state = applyFeedback(state, T0 + 6_000, { kind: 'throttled' }, config);
    expect(state.ceilingRpm).toBeCloseTo(600 * config.decrease, 9); // back below the raise of 20 s ago, and a step down
    expect(state.rpm).toBeCloseTo(600 * config.decrease * config.headroom, 9);
    expect(state.paceRaises).toEqual([]);
    expect(state.paceBackoff).toBe(2);
    expect(state.nextPaceProbeAt).toBe(T0 + 6_000 + 2 * config.paceUndoMs);
    // persisting still, with nothing left to undo: another step down
    state = drive(state, config, T0 + 6_000, 2.5).state;
    state = applyFeedback(state, T0 + 8_500, { kind: 'throttled' }, config);
    expect(state.ceilingRpm).toBeCloseTo(600 * config.decrease * config.headroom * config.decrease, 9);
    // after persistMs without one, a throttle is a first one again: the ceiling is the pace
    const calm = drive(state, config, T0 + 8_500, 11).state;
    const fresh = applyFeedback(calm, T0 + 19_600, { kind: 'throttled' }, config);
    expect(fresh.ceilingRpm).toBeCloseTo(Math.min(calm.rpm, calm.ceilingRpm as number), 9);
  });

  it('when throttles persist, takes what got through in the last measureSeconds as the ceiling: a quota cut by 40 % is followed in one step, not one `decrease` every cool-down', () => {
    const config = defaultPaceConfig(600);
    let state = drive(settled(config, 600), config, T0, 5).state;
    // From T0 + 5 s the account takes 6 calls a second (360/min): the rest are throttled.
    const perSecond = new Map<number, number>();
    const quota360 = (lease: LeaseInfo, at: number): Feedback => {
      const second = Math.floor(at / 1000);
      const used = perSecond.get(second) ?? 0;
      if (used >= 6) return { kind: 'throttled', lease };
      perSecond.set(second, used + 1);
      return { kind: 'ok', lease };
    };
    const ceilingAt: number[] = [];
    for (let s = 5; s < 11; s++) {
      state = drive(state, config, T0 + s * 1000, 1, { answer: quota360 }).state;
      ceilingAt.push(state.ceilingRpm as number);
    }
    // First throttle: the ceiling is the pace (≈ 588); 2 s later they persist: what got through.
    expect(ceilingAt[0]).toBeGreaterThan(500);
    expect(Math.min(...ceilingAt.slice(0, 5))).toBeLessThanOrEqual(400);
    expect(ceilingAt[5]).toBeGreaterThanOrEqual(300);
  });

  it('when almost nothing got through in the last measureSeconds, blocks the account for blockMs, doubling, and keeps ceiling and pace', () => {
    const config = defaultPaceConfig(600);
    const silent = { answer: () => undefined }; // sent, never accepted
    let state = drive(settled(config, 600), config, T0, 3, silent).state;
    state = applyFeedback(state, T0 + 3_000, { kind: 'throttled' }, config);
    const { ceilingRpm, rpm } = state;
    state = drive(state, config, T0 + 3_000, 2.5, silent).state;
    const before = state.rpm;
    state = applyFeedback(state, T0 + 5_500, { kind: 'throttled' }, config);
    expect(state.blockedUntil).toBe(T0 + 5_500 + config.blockMs);
    expect(state.blockMs).toBe(2 * config.blockMs);
    expect(state.ceilingRpm).toBe(ceilingRpm);
    expect(state.rpm).toBe(before);
    expect(rpm).toBeLessThan(before); // (it had grown back since the first throttle)
    expect(ask(state, T0 + 6_000, config).reservation).toEqual({ granted: false, retryInMs: 500 });
    expect(paceView(state, T0 + 6_000, config).blockedForMs).toBe(500);
    state = drive(state, config, T0 + 6_500, 1.5, silent).state;
    state = applyFeedback(state, T0 + 8_000, { kind: 'throttled' }, config);
    expect(state.blockedUntil).toBe(T0 + 8_000 + 2 * config.blockMs);
    expect(state.blockMs).toBe(4 * config.blockMs);
    expect(state.ceilingRpm).toBe(ceilingRpm);
    // an accepted call resets the wait
    expect(applyFeedback(state, T0 + 10_500, { kind: 'ok' }, config).blockMs).toBe(config.blockMs);
  });

  it('honours Retry-After by granting nothing until it has passed', () => {
    const config = defaultPaceConfig(120);
    const state = applyFeedback(initialPaceState(config, T0), T0, { kind: 'throttled', retryAfterMs: 5_000 }, config);
    expect(ask(state, T0 + 1_000, config).reservation).toEqual({ granted: false, retryInMs: 4_000 });
    expect(ask(state, T0 + 5_000, config).reservation.granted).toBe(true);
    // a shorter one later does not shorten it
    const again = applyFeedback(state, T0 + 1_000, { kind: 'throttled', retryAfterMs: 1_000 }, config);
    expect(again.blockedUntil).toBe(T0 + 5_000);
  });

  it('lowers the pace by timeoutDecrease on a timeout, once per cool-down, keeping the ceiling', () => {
    const config = defaultPaceConfig(600);
    const state = settled(config, 600);
    const once = applyFeedback(state, T0, { kind: 'timeout' }, config);
    expect(once.rpm).toBeCloseTo(588 * config.timeoutDecrease, 9);
    expect(once.ceilingRpm).toBe(600);
    expect(applyFeedback(once, T0 + 1_000, { kind: 'timeout' }, config).rpm).toBe(once.rpm);
    expect(applyFeedback(once, T0 + config.decreaseCooldownMs, { kind: 'timeout' }, config).rpm).toBeCloseTo(588 * config.timeoutDecrease ** 2, 9);
  });
});

describe('pace: ceiling probes', () => {
  const config = defaultPaceConfig(600);
  /** Settled at a ceiling of 500 (lowered by per-second throttles, the budget 600), a ceiling probe due now. */
  const due = (overrides: Partial<PaceState> = {}): PaceState => ({ ...settled(config, 500), nextPaceProbeAt: T0, ...overrides });

  it('raises the ceiling by the next step towards the budget while callers wait and the budget has room', () => {
    const { state } = drive(due(), config, T0, 1);
    expect(state.paceProbe).toMatchObject({ fromRpm: 500, step: config.paceStep });
    expect(state.ceilingRpm).toBeCloseTo(550, 9);
    expect(targetRpm(state, config)).toBeCloseTo(550 * config.headroom, 9);
    // never past the budget
    expect(drive(due({ ceilingRpm: 580, rpm: 580 * config.headroom }), config, T0, 1).state.ceilingRpm).toBe(600);
  });

  it('does not probe the ceiling at the budget, nor past it; a raised budget or a budget probe leaves room to', () => {
    const atBudget = { ceilingRpm: 600, rpm: 588 };
    const still = drive(due(atBudget), config, T0, 5).state;
    expect(still.paceProbe).toBeNull();
    expect(still.ceilingRpm).toBe(600);
    const learnt = drive(due({ ...atBudget, budgetRpm: 700 }), config, T0, 1).state;
    expect(learnt.paceProbe).toMatchObject({ fromRpm: 600 });
    expect(learnt.ceilingRpm).toBeCloseTo(660, 9);
    // a budget probe paces faster by twice its step (600 × 1.1), so the ceiling may follow
    const probing = drive(due({ ...atBudget, budgetProbe: probeOf(600, 0.05) }), config, T0, 1).state;
    expect(probing.ceilingRpm).toBeCloseTo(660, 9);
    const small = drive(due({ ...atBudget, budgetProbe: probeOf(600, 0.02) }), config, T0, 1).state;
    expect(small.ceilingRpm).toBeCloseTo(624, 9);
  });

  it('does not probe the ceiling without callers waiting', () => {
    let state = due();
    for (let t = T0; t < T0 + 5_000; t += 200) {
      state = grant(state, t, config).state; // each caller comes after its slot
      expect(state.paceProbe).toBeNull();
      expect(state.ceilingRpm).toBe(500);
    }
  });

  it('does not probe the ceiling without room (roomShare × budget sent in the trailing 61 s), unless a budget probe runs', () => {
    // 10 calls a second for the last 57 s: 570, the room's edge; 560 leaves room (the drive's own first calls count too)
    expect(config.roomShare * 600).toBe(570);
    expect(drive(due({ log: sentBefore(T0, 10, 57) }), config, T0, 1).state.paceProbe).toBeNull();
    expect(drive(due({ log: sentBefore(T0, 10, 56) }), config, T0, 1).state.paceProbe).not.toBeNull();
    expect(drive(due({ log: sentBefore(T0, 10, 57), budgetProbe: probeOf(600, 0.05) }), config, T0, 1).state.paceProbe).not.toBeNull();
  });

  it('waits paceProbeIntervalMs after a per-second throttle before probing', () => {
    let state = applyFeedback(due({ rpm: 490 }), T0, { kind: 'throttled' }, config);
    expect(state.nextPaceProbeAt).toBe(T0 + config.paceProbeIntervalMs);
    state = drive(state, config, T0, config.paceProbeIntervalMs / 1000 - 0.2).state;
    expect(state.paceProbe).toBeNull();
    state = drive(state, config, T0 + config.paceProbeIntervalMs - 200, 1).state;
    expect(state.paceProbe).not.toBeNull();
    expect(state.paceProbe?.since).toBeGreaterThanOrEqual(T0 + config.paceProbeIntervalMs);
  });

  it('keeps a probe the pace used through paceHoldMs and doubles the next step', () => {
    const probing = drive(due(), config, T0, 1).state;
    const since = probing.paceProbe?.since as number;
    const { state } = drive(probing, config, T0 + 1_000, (since + config.paceHoldMs - T0 - 1_000) / 1000 + 0.5);
    expect(state.paceRaises).toEqual([{ at: expect.any(Number), fromRpm: 500 }]);
    expect(state.nextPaceStep).toBe(2 * config.paceStep);
    // and probes on from there at once, up to the budget
    expect(state.paceProbe).toMatchObject({ fromRpm: 550, step: 2 * config.paceStep });
    expect(state.ceilingRpm).toBe(600);
  });

  it('reverts a probe the pace did not use (callers held back by the in-flight cap), without backing off', () => {
    const start = due({ inFlightCap: 2, nextCapProbeAt: T0 + FAR });
    const ceilings: number[] = [];
    const { state } = simulate({ config, state: start, limiter: acceptAll(), callers: 4, seconds: 5, latencyMs: () => 500, observe: (s) => ceilings.push(s.ceilingRpm as number) });
    expect(Math.max(...ceilings)).toBeCloseTo(550, 9);
    expect(state.ceilingRpm).toBe(500);
    expect(state.paceRaises).toEqual([]);
    expect(state.nextPaceStep).toBe(config.paceStep);
    expect(state.paceBackoff).toBe(1);
    expect(state.nextPaceProbeAt).toBeGreaterThan(T0 + config.paceHoldMs);
  });

  it('undoes a probe that a per-second throttle follows, halves the next step and backs off', () => {
    const probing = drive(due(), config, T0, 1).state;
    const held = drive(probing, config, T0 + 1_000, 3).state; // held: now probing 550 → 600
    expect(held.paceProbe).toMatchObject({ fromRpm: 550, step: 0.2 });
    const at = T0 + 4_100;
    const after = applyFeedback(held, at, { kind: 'throttled' }, config);
    expect(after.paceProbe).toBeNull();
    expect(after.ceilingRpm).toBe(550);
    expect(after.nextPaceStep).toBeCloseTo(0.1, 9);
    expect(after.paceBackoff).toBe(2);
    expect(after.nextPaceProbeAt).toBe(at + 2 * config.paceProbeIntervalMs);
    expect(after.rpm).toBeCloseTo(Math.min(held.rpm, 550 * config.headroom) * config.decrease, 9);
    // the probe explained it: the next throttle is a first one, not a persisting one
    expect(after.lastRateDecreaseAt).toBe(held.lastRateDecreaseAt);
    expect(applyFeedback(after, at + config.decreaseCooldownMs, { kind: 'throttled' }, config).ceilingRpm).toBeCloseTo(after.rpm / (1 + config.growthPerSecond), 9);
  });
});

describe('pace: calls in flight', () => {
  it('counts a granted lease as in flight until its report; `released` (never sent) frees it too', () => {
    const { config, state: start } = fixedPace(600);
    let state = start;
    const leases: LeaseInfo[] = [];
    for (let i = 0; i < 3; i++) {
      const out = grant(state, T0, config);
      state = out.state;
      leases.push(out.lease);
    }
    expect(leases.map((l) => [l.inFlight, l.count, l.budgetRpm])).toEqual([
      [1, 1, 600],
      [2, 2, 600],
      [3, 3, 600],
    ]);
    expect(paceView(state, T0, config).inFlight).toBe(3);
    state = applyFeedback(state, T0 + 300, { kind: 'ok', lease: leases[0] }, config);
    expect(paceView(state, T0 + 300, config).inFlight).toBe(2);
    state = applyFeedback(state, T0 + 300, { kind: 'released', lease: leases[1] }, config);
    expect(paceView(state, T0 + 300, config).inFlight).toBe(1);
    // a report without its lease releases nothing
    expect(paceView(applyFeedback(state, T0 + 300, { kind: 'ok' }, config), T0 + 300, config).inFlight).toBe(1);
    state = applyFeedback(state, T0 + 400, { kind: 'timeout', lease: leases[2] }, config);
    expect(paceView(state, T0 + 400, config).inFlight).toBe(0);
    expect(grant(state, T0 + 400, config).lease.inFlight).toBe(1);
  });

  it('stops counting an unreported lease leaseTtlMs after its slot (its worker died)', () => {
    const config = defaultPaceConfig(600);
    const { state } = grant({ ...settled(config, 600), inFlightCap: 1, nextCapProbeAt: T0 + FAR }, T0, config);
    expect(ask(state, T0 + config.leaseTtlMs - 1, config).reservation).toEqual({ granted: false, retryInMs: config.capPollMs });
    expect(ask(state, T0 + config.leaseTtlMs, config).reservation).toMatchObject({ granted: true, lease: { inFlight: 1 } });
  });

  it('recounts, at a report, the calls in flight when its call went out: calls reported before its slot do not count', () => {
    const { config, state: start } = fixedPace(120); // slots 500 ms apart
    const a = grant(start, T0, config);
    const b = grant(a.state, T0, config);
    expect(b.at).toBe(T0 + 500);
    expect(b.lease.inFlight).toBe(2);
    const c = grant(b.state, T0 + 500, config); // slot T0 + 1 s, after b's: never counted for b
    const reportB = (state: PaceState) => applyFeedback(state, T0 + 900, { kind: 'ok', lease: b.lease }, config).okHigh.inFlight;
    // a answered before b went out: b had only itself in flight
    expect(reportB(applyFeedback(c.state, T0 + 200, { kind: 'ok', lease: a.lease }, config))).toBe(1);
    // a answered after b went out: two
    expect(reportB(applyFeedback(c.state, T0 + 700, { kind: 'ok', lease: a.lease }, config))).toBe(2);
    expect(reportB(c.state)).toBe(2);
  });

  it('refuses a caller for capPollMs while the in-flight cap is reached, and grants only capHorizonMs ahead under a cap', () => {
    const config = defaultPaceConfig(600);
    let state: PaceState = { ...settled(config, 600), inFlightCap: 2, nextCapProbeAt: T0 + FAR };
    const a = grant(state, T0, config);
    state = a.state;
    const early = ask(state, T0, config).reservation; // the next slot is ~102 ms ahead
    expect(early.granted).toBe(false);
    expect(early.granted === false && early.retryInMs).toBe(Math.ceil(60_000 / 588 - config.capHorizonMs));
    state = grant(state, T0 + 95, config).state;
    expect(ask(state, T0 + 150, config).reservation).toEqual({ granted: false, retryInMs: config.capPollMs });
    state = applyFeedback(state, T0 + 200, { kind: 'ok', lease: a.lease }, config);
    expect(ask(state, T0 + 200, config).reservation.granted).toBe(true);
  });

  it('reads a throttle at more calls in flight than any accepted call (with 30 s of them) as the concurrency\'s: the cap is inFlight − 1, the ceiling stays', () => {
    const config = defaultPaceConfig(600);
    /** Three calls accepted at `at`, then five in flight, the fifth throttled. */
    const scene = (at: number, throttledInFlight = 5, unnamed = false) => {
      let state = settled(config, 600);
      const first: LeaseInfo[] = [];
      for (let i = 0; i < 3; i++) {
        const out = grant(state, at, config);
        state = out.state;
        first.push(out.lease);
      }
      for (const lease of first) state = applyFeedback(state, at + 500, { kind: 'ok', lease }, config);
      expect(state.okHigh.inFlight).toBe(3);
      let last: LeaseInfo | undefined;
      for (let i = 0; i < throttledInFlight; i++) {
        const out = grant(state, at + 1_000, config);
        state = out.state;
        last = out.lease;
      }
      return { before: state, after: applyFeedback(state, at + 2_000, { kind: 'throttled', lease: last, unnamed }, config) };
    };
    const { before, after } = scene(T0 + 40_000);
    expect(after.inFlightCap).toBe(4);
    expect(after.ceilingRpm).toBe(before.ceilingRpm);
    expect(after.rpm).toBe(before.rpm);
    expect(after.nextCapProbeAt).toBe(T0 + 42_000 + config.capProbeIntervalMs);
    // too little history to compare with: the rate's
    const early = scene(T0 + 10_000).after;
    expect(early.inFlightCap).toBeNull();
    expect(early.ceilingRpm).toBeLessThan(600);
    // no more in flight than accepted calls had: the rate's
    const usual = scene(T0 + 40_000, 3).after;
    expect(usual.inFlightCap).toBeNull();
    expect(usual.ceilingRpm).toBeLessThan(600);
    // while a cap is refusing, callers get capPollMs
    expect(ask(after, T0 + 42_100, config).reservation).toEqual({ granted: false, retryInMs: config.capPollMs });
  });

  it('reads a throttle whose code names no cause (`Throttling`) as the concurrency\'s at as many calls in flight as any accepted call, from the first', () => {
    const config = defaultPaceConfig(600);
    const scene = (throttledInFlight: number) => {
      let state = settled(config, 600);
      const first: LeaseInfo[] = [];
      for (let i = 0; i < 3; i++) {
        const out = grant(state, T0, config);
        state = out.state;
        first.push(out.lease);
      }
      for (const lease of first) state = applyFeedback(state, T0 + 500, { kind: 'ok', lease }, config);
      let last: LeaseInfo | undefined;
      for (let i = 0; i < throttledInFlight; i++) {
        const out = grant(state, T0 + 1_000, config);
        state = out.state;
        last = out.lease;
      }
      return { state, last };
    };
    // three in flight, as the accepted calls had, without half a minute of history: the cap is 2
    const even = scene(3);
    const capped = applyFeedback(even.state, T0 + 2_000, { kind: 'throttled', lease: even.last, unnamed: true }, config);
    expect(capped.inFlightCap).toBe(2);
    expect(capped.ceilingRpm).toBe(even.state.ceilingRpm);
    // the same call throttled with a code that names a rate: the rate's
    const rated = applyFeedback(even.state, T0 + 2_000, { kind: 'throttled', lease: even.last }, config);
    expect(rated.inFlightCap).toBeNull();
    expect(rated.ceilingRpm).toBeLessThan(600);
    // fewer in flight than accepted calls had: not the concurrency's, whatever the code
    const fewer = scene(2);
    const low = applyFeedback(fewer.state, T0 + 2_000, { kind: 'throttled', lease: fewer.last, unnamed: true }, config);
    expect(low.inFlightCap).toBeNull();
  });

  it('reads a throttle at the cap as the concurrency\'s only while the pace is not what holds calls back', () => {
    const config = defaultPaceConfig(600);
    const atCap = (state: PaceState, at: number) => {
      const leases: LeaseInfo[] = [];
      for (let i = 0; i < 4; i++) {
        const out = grant(state, Math.max(at, state.tat), config);
        state = out.state;
        leases.push(out.lease);
      }
      expect(leases.at(-1)?.inFlight).toBe(4);
      return applyFeedback(state, state.tat, { kind: 'throttled', lease: leases.at(-1) }, config);
    };
    const capped = { ...settled(config, 600), inFlightCap: 4, nextCapProbeAt: T0 + FAR };
    // a few calls now and then: the cap is what binds
    const idle = atCap(capped, T0);
    expect(idle.inFlightCap).toBe(3);
    expect(idle.ceilingRpm).toBe(600);
    // calls at the pace for the last seconds: the pace binds, so the rate is to blame
    const busy = drive(capped, config, T0, 4).state;
    const paced = atCap(busy, T0 + 4_000);
    expect(paced.inFlightCap).toBe(4);
    expect(paced.ceilingRpm).toBeLessThan(600);
  });

  it('raises the cap by one after capProbeIntervalMs when it held callers back, and backs off when a throttle follows a raise soon', () => {
    const config = defaultPaceConfig(600);
    /** Calls up to the cap from `at` − 1 s, one more refused by it, then one reported and a caller granted at `at`. */
    const heldBack = (start: PaceState, at: number): PaceState => {
      let state = start;
      const leases: LeaseInfo[] = [];
      let t = at - 1_000;
      for (;;) {
        const out = ask(state, t, config);
        state = out.state;
        if (out.reservation.granted) {
          leases.push(out.reservation.lease);
          t = Math.max(t, out.reservation.at);
        } else if (leases.length >= (state.inFlightCap as number)) {
          expect(out.reservation.retryInMs).toBe(config.capPollMs);
          break;
        } else t += out.reservation.retryInMs;
      }
      expect(t).toBeLessThan(at);
      state = applyFeedback(state, at, { kind: 'ok', lease: leases.shift() }, config);
      const next = grant(state, at, config);
      state = next.state;
      for (const lease of [...leases, next.lease]) state = applyFeedback(state, at + 1, { kind: 'released', lease }, config);
      return state;
    };
    const throttleAt = (state: PaceState, at: number, inFlight: number) =>
      applyFeedback(state, at, { kind: 'throttled', lease: { id: 'gone', inFlight, count: 10, budgetRpm: 600 } }, config);
    let state: PaceState = { ...settled(config, config.maxRpm), inFlightCap: 4, nextCapProbeAt: T0 + config.capProbeIntervalMs };
    expect(heldBack(state, T0 + config.capProbeIntervalMs - 1).inFlightCap).toBe(4);
    // callers waiting for their slots, none for the cap: no raise
    expect(grant({ ...state, lastLimitedAt: T0 + 14_900 }, T0 + config.capProbeIntervalMs, config).state.inFlightCap).toBe(4);
    state = heldBack(state, T0 + 15_000);
    expect(state.inFlightCap).toBe(5);
    expect(state.nextCapProbeAt).toBe(T0 + 30_000);
    // the raise is refused soon: back to 4, and the next raise waits twice as long
    state = throttleAt(state, T0 + 20_000, 5);
    expect(state.inFlightCap).toBe(4);
    expect(state.capBackoff).toBe(2);
    expect(state.nextCapProbeAt).toBe(T0 + 20_000 + 2 * config.capProbeIntervalMs);
    expect(heldBack(state, T0 + 49_000).inFlightCap).toBe(4);
    state = heldBack(state, T0 + 50_000);
    expect(state.inFlightCap).toBe(5);
    expect(state.capBackoff).toBe(2);
    // that one held: the next raise comes at the usual interval again
    state = heldBack(state, T0 + 80_000);
    expect(state.inFlightCap).toBe(6);
    expect(state.capBackoff).toBe(1);
    expect(state.nextCapProbeAt).toBe(T0 + 80_000 + config.capProbeIntervalMs);
    // a throttle at the cap long after a raise does not back off
    expect(throttleAt(state, T0 + 80_000 + config.capProbeIntervalMs, 6)).toMatchObject({ inFlightCap: 5, capBackoff: 1 });
  });
});

describe('pace: ramp guards (Throttling.BurstRate)', () => {
  it('treats a ramp throttle as "hold, then follow the guard", not as the quota', () => {
    const config = defaultPaceConfig(600);
    const state = { ...settled(config, 600), rpm: 400 };
    const after = applyFeedback(state, T0, { kind: 'throttled', ramp: true }, config);
    expect(after.ceilingRpm).toBe(600);
    expect(after.rpm).toBeCloseTo(400 * config.rampDecrease, 9);
    expect(after.rampFloorRpm).toBeCloseTo(280, 9);
    expect(after.grownAt).toBe(T0 + config.rampHoldMs);
    expect(after.lastRateDecreaseAt).toBe(0);
    // once per cool-down
    expect(applyFeedback(after, T0 + 500, { kind: 'throttled', ramp: true }, config).rpm).toBe(after.rpm);
    // a timeout ends the following
    expect(applyFeedback(after, T0 + config.decreaseCooldownMs, { kind: 'timeout' }, config).rampFloorRpm).toBeNull();
  });

  /** The upstream's ramp guard, as the emulator plays it: a second may hold max(6, 2 × the average second of the ten before) calls; the quota is 10 a second. */
  const rampGuard = (now: number, accepted: readonly number[]): Feedback['kind'] | 'ramp' | undefined => {
    const inSecond = countIn(accepted, now - 999, now + 1);
    if (inSecond + 1 > 10) return 'throttled';
    const baseline = countIn(accepted, now - 10_999, now - 999) / 10;
    return inSecond + 1 > Math.max(6, 2 * baseline) ? 'ramp' : undefined;
  };

  /** One caller at a time against the guard, each call answered at once. */
  function againstGuard(config: PaceConfig, seconds: number) {
    const accepted: number[] = [];
    const ramps: number[] = [];
    const quota: number[] = [];
    const out = drive(initialPaceState(config, T0), config, T0, seconds, {
      answer: (lease, at) => {
        const verdict = rampGuard(at, accepted);
        if (verdict === 'ramp') ramps.push(at);
        else if (verdict) quota.push(at);
        else accepted.push(at);
        return verdict === undefined ? { kind: 'ok', lease } : { kind: 'throttled', lease, ramp: verdict === 'ramp' };
      },
    });
    return { ...out, accepted, ramps, quota };
  }

  it('after a ramp throttle from idle follows the guard\'s rule and reaches the quota without tripping it again', () => {
    const { state, accepted, ramps } = againstGuard(defaultPaceConfig(600), 20);
    expect(ramps).toHaveLength(1);
    expect(state.rampFloorRpm).toBeNull();
    expect(countIn(accepted, T0 + 12_000, T0 + 13_000)).toBeGreaterThanOrEqual(9);
  });

  it('follows the guard: rampFactor × the average of the last rampWindowSeconds, up to the configured quota (or the target, when the guard tripped above it)', () => {
    const config = defaultPaceConfig(600);
    /** Ramp-throttled at `floor`, then `perSecond` calls a second for the last rampWindowSeconds. */
    const following = (floor: number, perSecond: number): PaceState => {
      const state: PaceState = { ...settled(config, 900), budgetRpm: 900, rpm: floor, rampFloorRpm: floor, grownAt: T0 - 1_000 };
      const log = structuredClone(state.log);
      for (let s = 1; s <= config.rampWindowSeconds; s++) log.sent[s] = perSecond;
      return grant({ ...state, log }, T0, config).state;
    };
    // 4 a second is 240 a minute: ×1.6 is 384, under the floor
    expect(following(400, 4)).toMatchObject({ rpm: 400, rampFloorRpm: 400 });
    // 7 a second: 672, capped at the configured quota's pace; the following ends there
    const capped = following(400, 7);
    expect(capped.rpm).toBeCloseTo(600 * config.headroom, 9);
    expect(capped.rampFloorRpm).toBeNull();
    // tripped above the configured quota: up to the target (headroom × the 900 ceiling)
    const above = following(700, 8);
    expect(above.rpm).toBeCloseTo(1.6 * 480, 9);
    expect(above.rampFloorRpm).toBe(700);
    expect(following(700, 10).rpm).toBeCloseTo(900 * config.headroom, 9);
  });
});

describe('pace: what the view shows', () => {
  it('reports pace, budget, utilisation and throttle ratio over the last minute', () => {
    const { config, state: start } = fixedPace(120);
    let state = drive(start, config, T0, 30).state;
    state = applyFeedback(state, T0 + 30_000, { kind: 'throttled' }, config);
    expect(paceView(state, T0 + 30_000, config)).toEqual({
      rpm: 108,
      ceilingRpm: 120,
      targetRpm: 120,
      budgetRpm: 120,
      sentLastMinute: 61, // a slot every 500 ms from T0 to T0 + 30 s
      probing: false,
      inFlight: 0,
      inFlightCap: null,
      utilisation: 1.017, // 61 calls in 30 s against 120 a minute
      throttleRatio: 0.016, // one throttle in 61 calls
      blockedForMs: 0,
      disabledReason: null,
    });
    // the window rolls on: those grants become the previous minute's, then are forgotten
    expect(paceView(state, T0 + 60_000, config)).toMatchObject({ sentLastMinute: 61, throttleRatio: 0.016, utilisation: 0.508 });
    expect(paceView(state, T0 + 90_000, config)).toMatchObject({ sentLastMinute: 1, throttleRatio: 0.016, utilisation: 0.339 });
    expect(paceView(state, T0 + 150_000, config)).toMatchObject({ sentLastMinute: 0, throttleRatio: 0, utilisation: 0 });
  });

  it('measures utilisation against the budget when a budget probe lets the pace above it', () => {
    const config = defaultPaceConfig(120);
    const window = { startedAt: T0, grants: 60, throttles: 0, prevGrants: 0, prevThrottles: 0, prevSpanMs: 0 }; // 120 a minute
    const probing: PaceState = { ...settled(config, 130), budgetProbe: probeOf(120, 0.05), window };
    expect(paceView(probing, T0 + 30_000, config)).toMatchObject({ budgetRpm: 120, targetRpm: 127.4, probing: true, utilisation: 1 });
    // otherwise against the pace
    expect(paceView({ ...probing, budgetProbe: null, ceilingRpm: 100 }, T0 + 30_000, config)).toMatchObject({ targetRpm: 98, probing: false, utilisation: 1.224 });
  });

  it('shows the calls in flight and the calls sent in the trailing minute', () => {
    const config = defaultPaceConfig(120);
    const state: PaceState = { ...settled(config, 120), log: sentBefore(T0, 2, 50) };
    const { state: after, leases } = drive(state, config, T0, 5, { answer: () => undefined });
    const view = paceView(after, T0 + 5_000, config);
    expect(view.inFlight).toBe(leases.length);
    expect(view.sentLastMinute).toBe(100 + leases.length);
  });

  it('stops showing a call in flight leaseTtlMs after its slot when it is never reported (its worker died)', () => {
    const config = defaultPaceConfig(120);
    const { state, leases } = drive(settled(config, 120), config, T0, 2, { answer: () => undefined });
    expect(paceView(state, T0 + 2_000, config).inFlight).toBe(leases.length);
    expect(paceView(state, T0 + config.leaseTtlMs + 5_000, config).inFlight).toBe(0);
  });

  it('a disabled account grants nothing until enabled, which also ends a Retry-After wait', () => {
    const config = defaultPaceConfig(120);
    let state = applyFeedback(initialPaceState(config, T0), T0, { kind: 'throttled', retryAfterMs: 60_000 }, config);
    state = applyFeedback(state, T0, { kind: 'disabled', reason: 'UPSTREAM_BILLING' }, config);
    expect(ask(state, T0 + 10, config).reservation.granted).toBe(false);
    expect(ask(state, T0 + 120_000, config).reservation.granted).toBe(false);
    expect(paceView(state, T0, config).disabledReason).toBe('UPSTREAM_BILLING');
    state = applyFeedback(state, T0 + 20, { kind: 'enabled' }, config);
    expect(paceView(state, T0 + 20, config)).toMatchObject({ disabledReason: null, blockedForMs: 0 });
    expect(ask(state, T0 + 2_000, config).reservation.granted).toBe(true);
  });
});

/** A limiter in a few lines: whether it takes a call now, and that a call it took has ended. */
interface Limiter {
  accept(now: number): boolean;
  done(now: number): void;
}

/** Times of the calls a limiter took, in a trailing window of `ms`. */
class Trailing {
  readonly times: number[] = [];
  constructor(readonly ms: number) {}
  count(now: number): number {
    while (this.times.length > 0 && (this.times[0] as number) <= now - this.ms) this.times.shift();
    return this.times.length;
  }
}

function acceptAll(): Limiter {
  return { accept: () => true, done() {} };
}

/** At most `limit` calls in any trailing `ms` (a 1-s window, or a sliding 60-s log). */
function slidingWindow(limit: number, ms: number): Limiter {
  const window = new Trailing(ms);
  return {
    accept(now) {
      if (window.count(now) >= limit) return false;
      window.times.push(now);
      return true;
    },
    done() {},
  };
}

/** At most `limit` calls in each `ms` window counted from `start`. */
function fixedWindow(limit: number, ms: number, start: number): Limiter {
  let index = -1;
  let used = 0;
  return {
    accept(now) {
      const i = Math.floor((now - start) / ms);
      if (i !== index) [index, used] = [i, 0];
      if (used >= limit) return false;
      used += 1;
      return true;
    },
    done() {},
  };
}

function tokenBucket(perMinute: number, size: number, start: number): Limiter {
  let tokens = size;
  let at = start;
  return {
    accept(now) {
      tokens = Math.min(size, tokens + ((now - at) * perMinute) / 60_000);
      at = now;
      if (tokens < 1) return false;
      tokens -= 1;
      return true;
    },
    done() {},
  };
}

function concurrencyCap(cap: number): Limiter {
  let inFlight = 0;
  return {
    accept() {
      if (inFlight >= cap) return false;
      inFlight += 1;
      return true;
    },
    done() {
      inFlight -= 1;
    },
  };
}

/** Events in virtual time, earliest first (a binary heap on [time, sequence]). */
class EventQueue {
  readonly #heap: [number, number, () => void][] = [];
  #seq = 0;
  at(time: number, run: () => void): void {
    const heap = this.#heap;
    const item: [number, number, () => void] = [time, this.#seq++, run];
    let i = heap.push(item) - 1;
    while (i > 0) {
      const parent = (i - 1) >> 1;
      if (!before(item, heap[parent] as [number, number, () => void])) break;
      heap[i] = heap[parent] as [number, number, () => void];
      i = parent;
    }
    heap[i] = item;
  }
  next(): [number, number, () => void] | undefined {
    const heap = this.#heap;
    const top = heap[0];
    const last = heap.pop();
    if (top === undefined || last === undefined || heap.length === 0) return top;
    let i = 0;
    for (;;) {
      const left = 2 * i + 1;
      if (left >= heap.length) break;
      const right = left + 1;
      const child = right < heap.length && before(heap[right] as [number, number, () => void], heap[left] as [number, number, () => void]) ? right : left;
      if (!before(heap[child] as [number, number, () => void], last)) break;
      heap[i] = heap[child] as [number, number, () => void];
      i = child;
    }
    heap[i] = last;
    return top;
  }
}

function before(a: [number, number, unknown], b: [number, number, unknown]): boolean {
  return a[0] < b[0] || (a[0] === b[0] && a[1] < b[1]);
}

interface Simulation {
  state: PaceState;
  sent: number[];
  accepted: number[];
  throttled: number[];
}

/**
 * `callers` jobs in a loop for `seconds` of virtual time, the fleet sharing one pace state: reserve
 * a slot (or wait as told), call at the slot, and report — a throttle 10 ms later, then try again
 * 200 ms after; an accepted call after its latency (300–800 ms, from a fixed seed), then the next.
 */
function simulate(options: {
  config: PaceConfig;
  limiter: Limiter;
  callers: number;
  seconds: number;
  state?: PaceState;
  latencyMs?: () => number;
  observe?: (state: PaceState, now: number) => void;
}): Simulation {
  const { config, limiter } = options;
  const events = new EventQueue();
  let now = T0;
  let state = options.state ?? initialPaceState(config, T0);
  let seed = 12_345;
  const latency = options.latencyMs ?? (() => 300 + ((seed = (seed * 1_103_515_245 + 12_345) % 2 ** 31) % 500));
  const result: Simulation = { state, sent: [], accepted: [], throttled: [] };
  const update = (next: PaceState) => {
    state = next;
    options.observe?.(state, now);
  };
  const attempt = () => {
    const { state: next, reservation } = ask(state, now, config, false);
    update(next);
    if (!reservation.granted) return events.at(now + reservation.retryInMs, attempt);
    const { lease } = reservation;
    events.at(reservation.at, () => {
      result.sent.push(now);
      if (limiter.accept(now)) {
        events.at(now + latency(), () => {
          limiter.done(now);
          result.accepted.push(now);
          update(applyFeedback(state, now, { kind: 'ok', lease }, config));
          attempt();
        });
      } else {
        result.throttled.push(now);
        events.at(now + 10, () => {
          update(applyFeedback(state, now, { kind: 'throttled', lease }, config));
          events.at(now + 200, attempt);
        });
      }
    });
  };
  for (let i = 0; i < options.callers; i++) events.at(T0 + i, attempt);
  const end = T0 + options.seconds * 1000;
  for (let event = events.next(); event && event[0] <= end; event = events.next()) {
    now = event[0];
    event[2]();
  }
  return { ...result, state };
}

describe('pace: against limiters (simulated minutes)', () => {
  it('under a per-second limit at the configured quota: next to no throttles, the quota used', () => {
    const config = defaultPaceConfig(600);
    const { sent, accepted, throttled, state } = simulate({ config, limiter: slidingWindow(10, 1_000), callers: 8, seconds: 90 });
    expect(throttled.length).toBeLessThan(0.01 * sent.length);
    expect(countIn(accepted, T0 + 30_000, T0 + 90_000)).toBeGreaterThanOrEqual(0.9 * 600);
    expect(maxInWindow(sent, 60_000)).toBeLessThanOrEqual(600);
    expect(state.inFlightCap).toBeNull();
    expect(state.ceilingRpm).toBeGreaterThanOrEqual(0.9 * 600);
  });

  it('under a sliding 60-s log: the budget keeps the window, a probe costs a throttle now and then', () => {
    const config = defaultPaceConfig(600);
    const { sent, accepted, throttled, state } = simulate({ config, limiter: slidingWindow(600, 60_000), callers: 8, seconds: 150 });
    expect(throttled.length).toBeLessThan(0.01 * sent.length);
    expect(countIn(accepted, T0, T0 + 150_000)).toBeGreaterThanOrEqual(0.9 * 600 * 2.5);
    // never more in 60 s than the budget and a probe's step
    expect(maxInWindow(sent, 60_000)).toBeLessThanOrEqual(600 * (1 + config.budgetStep));
    expect(state.budgetRpm).toBe(600);
  });

  it('under a fixed 60-s window (counted from the first call): never a burst across the window\'s edge', () => {
    const config = defaultPaceConfig(600);
    const { sent, accepted, throttled, state } = simulate({ config, limiter: fixedWindow(600, 60_000, T0), callers: 8, seconds: 150 });
    expect(throttled.length).toBeLessThan(0.01 * sent.length);
    expect(countIn(accepted, T0, T0 + 120_000)).toBeGreaterThanOrEqual(0.9 * 2 * 600);
    expect(maxInWindow(sent, 60_000)).toBeLessThanOrEqual(600 * (1 + config.budgetStep));
    // a trailing count spanning two windows may let a probe's step through, no more
    expect(state.budgetRpm).toBeLessThanOrEqual(600 * (1 + config.budgetStep));
  });

  it('under a token bucket refilling at the quota: throttles stay rare, the refill rate is used', () => {
    const config = defaultPaceConfig(600);
    const { sent, accepted, throttled } = simulate({ config, limiter: tokenBucket(600, 20, T0), callers: 8, seconds: 120 });
    expect(throttled.length).toBeLessThan(0.01 * sent.length);
    expect(countIn(accepted, T0 + 60_000, T0 + 120_000)).toBeGreaterThanOrEqual(0.9 * 600);
    // a bucket takes its refill and its size in any 60 s, no more
    expect(maxInWindow(sent, 60_000)).toBeLessThanOrEqual(600 + 20);
  });

  it('under a concurrency cap with a fixed latency: learns the cap and keeps it full', () => {
    const config = defaultPaceConfig(600);
    const { sent, accepted, throttled, state } = simulate({ config, limiter: concurrencyCap(4), callers: 6, seconds: 90, latencyMs: () => 500 });
    expect(state.inFlightCap).toBeGreaterThanOrEqual(4);
    expect(state.inFlightCap).toBeLessThanOrEqual(5);
    expect(throttled.length).toBeLessThan(0.02 * sent.length);
    // capacity: 4 calls per 500 ms, 480 a minute
    expect(countIn(accepted, T0 + 30_000, T0 + 90_000)).toBeGreaterThanOrEqual(0.9 * 480);
    // the pace is not what holds calls back
    expect(targetRpm(state, config)).toBeGreaterThanOrEqual(0.9 * 480);
  });
});
