/**
 * The constants of one account's pace. What each rule means, on which kind of limiter, is in
 * docs/performance.md ("The governor"); the values here are defaults, overridable per
 * deployment (tests and the bench do).
 */
export interface PaceConfig {
  /** The account's configured quota (ZIMAGE_RPM): the budget of any trailing 60 s until a probe shows more. */
  configuredRpm: number;
  /** Never slower than this, and no budget below it. */
  minRpm: number;
  /** Never faster than this (requests/min), and no budget above it, whatever probes find. */
  maxRpm: number;

  // The budget: calls in any trailing 60 s.
  /** First step of a budget probe above the configured quota, as a share of the budget: small. */
  budgetStep: number;
  /** Below the configured quota (after a window reading) a budget probe starts at this step. */
  budgetRecoveryStep: number;
  /** A step confirmed doubles the next, up to this. */
  maxBudgetStep: number;
  /** Calls beyond the budget (the probe's excess) are spaced at least this far apart. */
  probeSpacingMs: number;
  /** Quiet time (no window throttle) with the budget full before probing above the configured quota; × backoff. */
  budgetProbeIntervalMs: number;
  /** The same below the configured quota. */
  budgetRecoveryIntervalMs: number;
  /** A call sent at this share of the budget or more, at a count never accepted lately, reads a throttle as the window's. */
  windowEdge: number;

  // The pace: calls per second (spacing).
  /** Steady pace as a share of the pace ceiling: room for arrival jitter in a 1-s window. */
  headroom: number;
  /** Multiplicative growth per second while below target (slow start, recovery). */
  growthPerSecond: number;
  /** After a per-second throttle the pace restarts at this share of the ceiling. */
  decrease: number;
  /** One decrease per congestion event: 429s already in flight say nothing new. */
  decreaseCooldownMs: number;
  /** Another per-second throttle this soon after a decrease means the decrease was not enough. */
  persistMs: number;
  /** Seconds of the fleet's own log measured when throttles persist ("what got through"). */
  measureSeconds: number;
  /** First step of a ceiling probe (only while the budget has room); a step that holds doubles the next. */
  paceStep: number;
  maxPaceStep: number;
  /** How long a ceiling step must run without a per-second throttle to hold. */
  paceHoldMs: number;
  /** Persisting per-second throttles undo every ceiling raise this recent (a bucket absorbs a step for a while). */
  paceUndoMs: number;
  /** Quiet time before a ceiling probe; × backoff. */
  paceProbeIntervalMs: number;
  /** The budget has room below this share of it. */
  roomShare: number;
  /** When almost nothing gets through, stop for this long, doubling up to `maxBlockMs`. */
  blockMs: number;
  maxBlockMs: number;
  maxProbeBackoff: number;

  // Ramp guards (`Throttling.BurstRate`).
  /** Pace multiplier on a ramp throttle. */
  rampDecrease: number;
  /** After a ramp throttle the pace holds this long before growing again. */
  rampHoldMs: number;
  /** After a ramp throttle the pace stays under this multiple of the fleet's average over `rampWindowSeconds`. */
  rampFactor: number;
  rampWindowSeconds: number;

  // In flight.
  /** While an in-flight cap holds, calls are granted only this close to their slot (in flight counts from the grant). */
  capHorizonMs: number;
  /** How often a caller refused by the in-flight cap asks again. */
  capPollMs: number;
  /** Quiet time before the in-flight cap is raised by one; × backoff after raises that failed. */
  capProbeIntervalMs: number;
  /** A call not reported after this long no longer counts as in flight (its worker died). */
  leaseTtlMs: number;

  /** Pace multiplier on a timeout (it may be congestion, or just a slow answer). */
  timeoutDecrease: number;
  /** Without calls for this long, restart slowly. */
  idleMs: number;
  /** Slots are reserved at most this far ahead (priority calls). */
  horizonMs: number;
  /** Bulk calls reserve at most this far ahead, so few stand between a priority call and the next slot. */
  bulkHorizonMs: number;
  /** A caller that waited within this long counts as demand (probes need demand to mean anything). */
  demandMs: number;
}

export function defaultPaceConfig(configuredRpm: number): PaceConfig {
  return {
    configuredRpm,
    minRpm: Math.max(1, configuredRpm / 20),
    maxRpm: configuredRpm * 3,
    budgetStep: 0.05,
    budgetRecoveryStep: 0.1,
    maxBudgetStep: 0.4,
    probeSpacingMs: 100,
    budgetProbeIntervalMs: 60_000,
    budgetRecoveryIntervalMs: 10_000,
    windowEdge: 0.98,
    headroom: 0.98,
    growthPerSecond: 0.1,
    decrease: 0.9,
    decreaseCooldownMs: 2_000,
    persistMs: 10_000,
    measureSeconds: 3,
    paceStep: 0.1,
    maxPaceStep: 0.4,
    paceHoldMs: 3_000,
    paceProbeIntervalMs: 3_000,
    paceUndoMs: 30_000,
    roomShare: 0.95,
    blockMs: 1_000,
    maxBlockMs: 16_000,
    maxProbeBackoff: 8,
    rampDecrease: 0.7,
    rampHoldMs: 3_000,
    rampFactor: 1.6,
    rampWindowSeconds: 10,
    capHorizonMs: 10,
    capPollMs: 25,
    capProbeIntervalMs: 15_000,
    leaseTtlMs: 5 * 60_000,
    timeoutDecrease: 0.85,
    idleMs: 15_000,
    horizonMs: 1_000,
    bulkHorizonMs: 250,
    demandMs: 2_000,
  };
}
