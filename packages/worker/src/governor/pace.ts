/**
 * The pace of one account: how fast the whole fleet may call it, and how that pace adapts.
 *
 * Pure arithmetic over a small state object; `pace-store.ts` keeps the state in Redis (one per
 * account, shared by every worker process) and applies these functions with compare-and-set.
 *
 * Spacing — GCRA with reservations: each call gets its own slot `interval = 60000 / rpm` after
 * the previous one (the "theoretical arrival time", TAT), so calls are spread evenly and never
 * arrive as a minute's quota in one burst. Slots are reserved at most `horizonMs` ahead; a caller
 * further back is told to ask again later, so a late high-priority job is not stuck behind a
 * long line of reservations.
 *
 * Adapting — the real quota is learnt, not trusted from configuration:
 * - probe: until the first throttle, the pace grows by `growthPerSecond` (multiplicative; at 10% a
 *   second the last second's rate stays under 1.7× the average of the ten before it, so a ramp
 *   guard that allows twice the recent rate does not fire);
 * - a quota throttle (`Throttling.RateQuota` and the like) tells something about the ceiling —
 *   the first sets it, one just after a probe undoes the probe, repeated ones lower it, a lone
 *   one is jitter (`learnFromQuotaThrottle`) — and drops the pace to `decrease` × the target,
 *   from where it climbs back within a second or two; one decrease per `decreaseCooldownMs`,
 *   since one overshoot produces several 429s already in flight;
 * - a ramp throttle (`Throttling.BurstRate`: "rate increased too quickly") says nothing about the
 *   quota but shows the upstream guards against ramps: the pace is multiplied by `rampDecrease`
 *   and from there follows the guard's rule (at most `rampFactor` × the fleet's average rate over
 *   the last `rampWindowSeconds`) up to the configured quota, without a ceiling;
 * - a timeout (maybe congestion, maybe a slow answer) multiplies the pace by `timeoutDecrease`;
 * - steady: the pace climbs back to `headroom` × ceiling and stays there; every
 *   `probeIntervalMs` (× `probeBackoff` after probes that failed) without a throttle the ceiling
 *   is raised by `probeStep` (additive increase), so a quota that grew, or a ceiling learnt from
 *   a chance throttle, is found again;
 * - slow start: after `idleMs` without calls the pace restarts at half the target.
 */

export interface PaceConfig {
  /** The account's configured quota (ZIMAGE_RPM); the starting estimate, not a limit. */
  configuredRpm: number;
  /** Never slower than this. */
  minRpm: number;
  /** Never faster than this (requests/min). */
  maxRpm: number;
  /** Steady pace as a share of the learnt ceiling. */
  headroom: number;
  /** Multiplicative growth per second while below target. */
  growthPerSecond: number;
  /** Ceiling increase per probe, as a share of the ceiling. */
  probeStep: number;
  probeIntervalMs: number;
  /** A quota throttle this soon after a probe undoes the probe. */
  probeUndoMs: number;
  maxProbeBackoff: number;
  /** After a quota throttle, the pace restarts at this share of the new target. */
  decrease: number;
  /** Pace multiplier on a ramp throttle (`Throttling.BurstRate`). */
  rampDecrease: number;
  /** After a ramp throttle the pace holds this long before growing again. */
  rampHoldMs: number;
  /**
   * Once a ramp throttle has shown that the upstream has a ramp guard, the pace stays under this
   * multiple of the fleet's average rate over the previous `rampWindowSeconds` (the guard's own
   * rule, with a margin), and never under the pace the throttle left.
   */
  rampFactor: number;
  rampWindowSeconds: number;
  /** Pace multiplier on a timeout (it may be congestion, or just a slow answer). */
  timeoutDecrease: number;
  decreaseCooldownMs: number;
  /** Without calls for this long, restart slowly. */
  idleMs: number;
  /** Slots are reserved at most this far ahead (priority calls). */
  horizonMs: number;
  /**
   * Bulk calls reserve at most this far ahead, so few bulk reservations stand between a priority
   * call and the next slot; they ask again more often instead.
   */
  bulkHorizonMs: number;
}

export function defaultPaceConfig(configuredRpm: number): PaceConfig {
  return {
    configuredRpm,
    minRpm: Math.max(1, configuredRpm / 20),
    maxRpm: configuredRpm * 3,
    headroom: 0.98,
    growthPerSecond: 0.1,
    probeStep: 0.02,
    probeIntervalMs: 30_000,
    probeUndoMs: 10_000,
    maxProbeBackoff: 4,
    decrease: 0.9,
    rampDecrease: 0.9,
    rampHoldMs: 3_000,
    rampFactor: 1.6,
    rampWindowSeconds: 10,
    timeoutDecrease: 0.85,
    decreaseCooldownMs: 2_000,
    idleMs: 15_000,
    horizonMs: 1_000,
    bulkHorizonMs: 250,
  };
}

export interface PaceState {
  /** Current pace, requests per minute. */
  rpm: number;
  /** Pace at which the upstream last throttled us, raised by probes; null until the first throttle. */
  ceilingRpm: number | null;
  /** GCRA theoretical arrival time: the next free slot, epoch ms. */
  tat: number;
  /** When the pace was last grown (growth is by elapsed time); in the future while it holds. */
  grownAt: number;
  lastGrantAt: number;
  lastDecreaseAt: number;
  /** The last quota throttle that was acted on (outside the decrease cool-down). */
  lastQuotaThrottleAt: number;
  lastProbeAt: number;
  /**
   * The probe interval is `probeIntervalMs` × this: doubled (up to `maxProbeBackoff`) each time a
   * probe is undone, back to 1 when one holds, so a fleet already at the quota probes it rarely.
   */
  probeBackoff: number;
  /** No calls before this (Retry-After, or an account error). */
  blockedUntil: number;
  /** Why the account is blocked, when it is disabled (an account-wide error). */
  disabledReason: string | null;
  /**
   * Set by a ramp throttle to the pace it left: the upstream guards against ramps, and the pace
   * now follows its rule (see `rampFactor`). Cleared by an idle restart.
   */
  rampFloorRpm: number | null;
  /** Slots granted per second, by slot time: `counts[i]` is for second `second - i` (epoch s). */
  sent: { second: number; counts: number[] };
  /** Counters for the current and previous minute, for utilisation and throttle ratio. */
  window: { startedAt: number; grants: number; throttles: number; prevGrants: number; prevThrottles: number; prevSpanMs: number };
}

export function initialPaceState(config: PaceConfig, now: number): PaceState {
  return {
    rpm: Math.max(config.minRpm, config.configuredRpm / 2),
    ceilingRpm: null,
    tat: now,
    grownAt: now,
    lastGrantAt: now,
    lastDecreaseAt: 0,
    lastQuotaThrottleAt: 0,
    lastProbeAt: now,
    probeBackoff: 1,
    blockedUntil: 0,
    disabledReason: null,
    rampFloorRpm: null,
    sent: { second: Math.floor(now / 1000), counts: [0] },
    window: { startedAt: now, grants: 0, throttles: 0, prevGrants: 0, prevThrottles: 0, prevSpanMs: 0 },
  };
}

export function targetRpm(state: PaceState, config: PaceConfig): number {
  return state.ceilingRpm === null ? config.maxRpm : Math.min(config.maxRpm, Math.max(config.minRpm, state.ceilingRpm * config.headroom));
}

export type Reservation = { granted: true; at: number } | { granted: false; retryInMs: number };

/** Reserves the next slot, or says how long to wait before asking again. */
export function reserve(previous: PaceState, now: number, config: PaceConfig, urgent = true): { state: PaceState; reservation: Reservation } {
  const horizonMs = urgent ? config.horizonMs : config.bulkHorizonMs;
  const state = rollWindow(structuredClone(previous), now);
  if (state.disabledReason !== null || now < state.blockedUntil) {
    return { state, reservation: { granted: false, retryInMs: Math.max(1, state.blockedUntil - now) } };
  }
  const target = targetRpm(state, config);

  // Slow start after idle: the upstream's ramp guard punishes going from nothing to full speed.
  if (now - state.lastGrantAt > config.idleMs && state.tat <= now) {
    state.rpm = Math.max(config.minRpm, Math.min(state.rpm, target / 2));
    state.grownAt = now;
    state.rampFloorRpm = null;
  }
  // Growth by elapsed time while we are being used and below target.
  const elapsed = Math.max(0, now - state.grownAt) / 1000;
  if (state.rpm < target) state.rpm = Math.min(target, state.rpm * (1 + config.growthPerSecond) ** elapsed);
  state.grownAt = Math.max(state.grownAt, now);
  // Additive probing of the ceiling while steady and unthrottled.
  if (state.ceilingRpm !== null && now - Math.max(state.lastProbeAt, state.lastDecreaseAt) >= config.probeIntervalMs * state.probeBackoff) {
    // Reaching the next probe without a throttle means the last one held.
    if (state.lastQuotaThrottleAt < state.lastProbeAt) state.probeBackoff = 1;
    state.ceilingRpm = Math.min(config.maxRpm / config.headroom, state.ceilingRpm * (1 + config.probeStep));
    state.lastProbeAt = now;
  }

  const slot = Math.max(state.tat, now);
  if (slot - now > horizonMs) {
    return { state, reservation: { granted: false, retryInMs: Math.ceil(slot - now - horizonMs) } };
  }
  // Ramping up after a ramp throttle: follow the guard's own rule instead of a fixed growth rate.
  // From idle the guard's baseline includes the idle past, so growing 10% a second trips it again
  // and again (twice in a run's first 8 s, then a hold each time), while following the baseline
  // reaches the quota several seconds sooner. The ramp ends at the configured quota (beyond it the
  // pace probes at the fixed rate: jumping past it overshot the real quota by 4% before the first
  // quota throttle, and ratcheting back down cost more throttles) unless the guard tripped above
  // it already, which says the configured quota is too low; or it ends at a quota throttle.
  if (state.rampFloorRpm !== null) {
    const end = state.rampFloorRpm < config.configuredRpm ? Math.min(target, config.configuredRpm) : target;
    state.rpm = Math.min(end, Math.max(state.rampFloorRpm, config.rampFactor * recentRpm(state, slot, config)));
    if (state.rpm >= end) state.rampFloorRpm = null;
  }
  state.tat = slot + 60_000 / state.rpm;
  state.lastGrantAt = now;
  state.window.grants += 1;
  recordSlot(state, slot, config);
  return { state, reservation: { granted: true, at: slot } };
}

/** The fleet's average rate (per minute) over the `rampWindowSeconds` before the slot's second. */
function recentRpm(state: PaceState, slot: number, config: PaceConfig): number {
  const second = Math.floor(slot / 1000);
  const seconds = Math.max(1, config.rampWindowSeconds);
  let sum = 0;
  for (let ago = 1; ago <= seconds; ago++) sum += state.sent.counts[state.sent.second - second + ago] ?? 0;
  return (sum / seconds) * 60;
}

function recordSlot(state: PaceState, slot: number, config: PaceConfig): void {
  const second = Math.floor(slot / 1000);
  const sent = state.sent;
  if (second > sent.second) {
    sent.counts = [...new Array<number>(Math.min(second - sent.second, config.rampWindowSeconds + 1)).fill(0), ...sent.counts];
    sent.second = second;
  }
  sent.counts.length = Math.min(sent.counts.length, config.rampWindowSeconds + 1);
  const index = sent.second - second;
  if (index < sent.counts.length) sent.counts[index] = (sent.counts[index] ?? 0) + 1;
}

/**
 * Reserves a slot for each of several callers at one instant (the calls waiting in one process,
 * granted with one compare-and-set instead of one each). Priority callers are served first, so a
 * bulk caller refused beyond its shorter horizon never stands in a priority caller's way. The
 * reservations come back in the callers' order.
 */
export function reserveEach(previous: PaceState, now: number, config: PaceConfig, urgent: readonly boolean[]): { state: PaceState; reservations: Reservation[] } {
  let state = previous;
  const reservations: Reservation[] = new Array<Reservation>(urgent.length);
  const order = urgent.map((_, i) => i).sort((a, b) => Number(urgent[b]) - Number(urgent[a]));
  for (const i of order) {
    const out = reserve(state, now, config, urgent[i]);
    state = out.state;
    reservations[i] = out.reservation;
  }
  return { state, reservations };
}

export type Feedback = { kind: 'throttled'; retryAfterMs?: number | undefined; ramp?: boolean | undefined } | { kind: 'timeout' } | { kind: 'disabled'; reason: string } | { kind: 'enabled' };

/** Applies what the upstream said about a call made at this pace. */
export function applyFeedback(previous: PaceState, now: number, feedback: Feedback, config: PaceConfig): PaceState {
  const state = rollWindow(structuredClone(previous), now);
  switch (feedback.kind) {
    case 'throttled': {
      state.window.throttles += 1;
      if (feedback.retryAfterMs !== undefined) state.blockedUntil = Math.max(state.blockedUntil, now + feedback.retryAfterMs);
      if (now - state.lastDecreaseAt >= config.decreaseCooldownMs) {
        if (feedback.ramp) {
          // The guard compares this second with the seconds before it: growing again at once trips
          // it again (five ramp throttles in the first 8 s of a bench run did). The pace now
          // follows the guard's rule (`reserve`); the hold applies if a timeout ends that early.
          state.rpm = Math.max(config.minRpm, state.rpm * config.rampDecrease);
          state.grownAt = now + config.rampHoldMs;
          state.rampFloorRpm = state.rpm;
        } else {
          learnFromQuotaThrottle(state, now, config);
          state.rampFloorRpm = null;
          state.rpm = Math.max(config.minRpm, Math.min(state.rpm, targetRpm(state, config)) * config.decrease);
          state.grownAt = Math.max(state.grownAt, now); // a ramp hold still running is kept
        }
        state.lastDecreaseAt = now;
        // Slots already handed out at the old pace stay; new ones follow the new spacing.
        state.tat = Math.max(state.tat, now + 60_000 / state.rpm);
      }
      return state;
    }
    case 'timeout':
      if (now - state.lastDecreaseAt >= config.decreaseCooldownMs) {
        state.rpm = Math.max(config.minRpm, state.rpm * config.timeoutDecrease);
        state.rampFloorRpm = null; // growth goes back to the fixed rate, from the lower pace
        state.lastDecreaseAt = now;
        state.grownAt = Math.max(state.grownAt, now);
      }
      return state;
    case 'disabled':
      state.disabledReason = feedback.reason;
      return state;
    case 'enabled':
      state.disabledReason = null;
      state.blockedUntil = 0;
      return state;
  }
}

/**
 * What a quota throttle (outside the decrease cool-down) says about the ceiling:
 * - the first one: the quota is at most the pace of a second ago (the pace grows while the
 *   upstream's 1-s window fills; taking the pace at the throttle overshot a 600/min quota by 10%,
 *   and stepping back down from there cost a throttle per 2%), or the pace itself when it was not
 *   growing (held, or at its maximum);
 * - the first since a recent probe: the probe went past the quota; back to the ceiling that held
 *   before it, and probe less often;
 * - another within the probe interval: the quota is at most this pace, and 6% below it when the
 *   throttles come back to back (the next one as soon as the cool-down allows: the ceiling is well
 *   above the quota; stepping 2% at a time from a first ceiling 20% high cost 26 throttles). Probing
 *   resumes at its normal interval, as it is now below where probes failed;
 * - else a lone one while steady: arrival jitter in the upstream's 1-s window near the quota until
 *   another follows; the caller dips the pace and restarts the probe clock, the ceiling stays.
 */
function learnFromQuotaThrottle(state: PaceState, now: number, config: PaceConfig): void {
  const sinceLast = now - state.lastQuotaThrottleAt;
  if (state.ceilingRpm === null) {
    const growing = state.grownAt <= now && state.rpm < config.maxRpm;
    state.ceilingRpm = Math.max(config.minRpm, growing ? state.rpm / (1 + config.growthPerSecond) : state.rpm);
  } else if (state.lastQuotaThrottleAt < state.lastProbeAt && now - state.lastProbeAt < config.probeUndoMs) {
    state.ceilingRpm /= 1 + config.probeStep;
    state.probeBackoff = Math.min(config.maxProbeBackoff, state.probeBackoff * 2);
  } else if (sinceLast < config.probeIntervalMs) {
    const backToBack = sinceLast < 2 * config.decreaseCooldownMs;
    state.ceilingRpm = Math.min(state.ceilingRpm, state.rpm) * (backToBack ? 1 - 2 * config.probeStep : 1);
    state.probeBackoff = 1;
  }
  state.lastQuotaThrottleAt = now;
}

/** Utilisation and throttle ratio over roughly the last minute. */
export function paceView(state: PaceState, now: number, config: PaceConfig) {
  const rolled = rollWindow(structuredClone(state), now);
  const span = Math.max(1_000, now - rolled.window.startedAt + rolled.window.prevSpanMs);
  const grants = rolled.window.grants + rolled.window.prevGrants;
  const throttles = rolled.window.throttles + rolled.window.prevThrottles;
  return {
    rpm: round(rolled.rpm),
    ceilingRpm: rolled.ceilingRpm === null ? null : round(rolled.ceilingRpm),
    targetRpm: round(targetRpm(rolled, config)),
    /** Calls granted per minute over the window, as a share of the pace the account can sustain. */
    utilisation: round(((grants / span) * 60_000) / targetRpm(rolled, config)),
    throttleRatio: grants === 0 ? 0 : round(throttles / grants),
    blockedForMs: Math.max(0, rolled.blockedUntil - now),
    disabledReason: rolled.disabledReason,
  };
}

function rollWindow(state: PaceState, now: number): PaceState {
  const age = now - state.window.startedAt;
  if (age >= 120_000) state.window = { startedAt: now, grants: 0, throttles: 0, prevGrants: 0, prevThrottles: 0, prevSpanMs: 0 };
  else if (age >= 60_000) {
    const { grants, throttles } = state.window;
    state.window = { startedAt: state.window.startedAt + 60_000, grants: 0, throttles: 0, prevGrants: grants, prevThrottles: throttles, prevSpanMs: 60_000 };
  }
  return state;
}

function round(value: number): number {
  return Math.round(value * 1000) / 1000;
}
