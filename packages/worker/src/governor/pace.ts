/**
 * The pace of one account: how fast, how many in a minute and how many at once the whole fleet
 * may call it, and how that adapts to what the upstream answers.
 *
 * Pure arithmetic over a small state object; `pace-store.ts` keeps the state in Redis (one per
 * account, shared by every worker process) and applies these functions with compare-and-set.
 * Three limits, because a limiter may count three things:
 *
 * - the budget: calls in any trailing 60 s never exceed it (the configured quota, until a probe
 *   shows more), so a minute-window limiter that answers late is never overrun;
 * - the pace: GCRA spacing (`60000 / rpm` between slots) under a ceiling learnt from per-second
 *   throttles; while no such throttle was seen the pace may run ahead, the budget still holding;
 * - the in-flight cap: learnt from throttles that the number of calls in flight explains.
 *
 * What each throttle says depends on the call it hit: a ramp throttle (`Throttling.BurstRate`)
 * speaks of ramps, a call at a new high of calls in flight of concurrency, a call at the budget's
 * edge at a count never accepted lately of the window, anything else of the per-second rate. The
 * rules, and why each holds on limiters we were never tuned on, are in docs/performance.md
 * ("The governor").
 */
import type { PaceConfig } from './pace-config.js';
import { countUpTo, emptySendLog, ratePerMinute, recordEvent, type SendLog } from './send-log.js';

export { defaultPaceConfig, type PaceConfig } from './pace-config.js';

/** Whole seconds a trailing-60-s count spans: the current one and the 60 before it. */
const BUDGET_SECONDS = 61;

export interface PaceState {
  /** Current pace, requests per minute (GCRA spacing). */
  rpm: number;
  /**
   * Per-second ceiling: the configured quota at first, lowered by per-second throttles, raised by
   * probes while the budget has room (a window limiter then gets its window's calls sooner).
   */
  ceilingRpm: number | null;
  /** Calls allowed in any trailing 60 s: the configured quota, raised by accepted probe calls, lowered by window throttles. */
  budgetRpm: number;
  /** A budget probe: calls up to `budgetRpm × (1 + step)`, the excess spaced out; each accepted one raises the budget. */
  budgetProbe: { step: number; fromRpm: number; since: number; lastExcessAt: number } | null;
  nextBudgetStep: number;
  nextBudgetProbeAt: number;
  budgetBackoff: number;
  /** A ceiling probe: raised from `fromRpm` at `since`; a per-second throttle within the hold undoes it. */
  paceProbe: { fromRpm: number; step: number; since: number } | null;
  /** Ceiling raises that held, within `paceUndoMs`: a bucket may absorb a step for a while, so persisting throttles undo them all. */
  paceRaises: { at: number; fromRpm: number }[];
  nextPaceStep: number;
  nextPaceProbeAt: number;
  paceBackoff: number;
  /** GCRA theoretical arrival time: the next free slot, epoch ms. */
  tat: number;
  /** When the pace was last grown (growth is by elapsed time); in the future while it holds. */
  grownAt: number;
  lastGrantAt: number;
  /** The last time a caller had to wait (for a slot, the budget or the cap): there is demand. */
  lastLimitedAt: number;
  /** The last time a call was granted at, or refused by, the full budget. */
  budgetFullAt: number;
  lastDecreaseAt: number;
  /** The last decrease for a throttle no probe explained: another soon after means they persist. */
  lastRateDecreaseAt: number;
  /** No calls before this (Retry-After, nothing getting through, or an account error). */
  blockedUntil: number;
  /** The next wait when nothing gets through, doubled while that lasts. */
  blockMs: number;
  /** Why the account is blocked, when it is disabled (an account-wide error). */
  disabledReason: string | null;
  /** Set by a ramp throttle to the pace it left: the pace now follows the guard's rule. */
  rampFloorRpm: number | null;
  log: SendLog;
  /**
   * Calls granted: lease id → [its slot, when it was reported or 0] (epoch ms). Reported calls stay
   * a few seconds, so a report can count the calls in flight when its call went out; an unreported
   * one stops counting `leaseTtlMs` after its slot (its worker died).
   */
  leases: Record<string, [number, number]>;
  /** Most calls in flight at once, learnt from concurrency throttles; null while none was seen. */
  inFlightCap: number | null;
  capRaisedAt: number;
  /** The last time a caller was refused by the in-flight cap. */
  capLimitedAt: number;
  nextCapProbeAt: number;
  capBackoff: number;
  /** Highs among accepted calls — calls in flight, and trailing-60-s count, at their grant — over this and the previous minute. */
  okHigh: { since: number; inFlight: number; count: number; previousInFlight: number; previousCount: number };
  /** Counters for the current and previous minute, for utilisation and throttle ratio. */
  window: { startedAt: number; grants: number; throttles: number; prevGrants: number; prevThrottles: number; prevSpanMs: number };
}

export function initialPaceState(config: PaceConfig, now: number): PaceState {
  return {
    rpm: Math.max(config.minRpm, config.configuredRpm / 2),
    ceilingRpm: config.configuredRpm,
    budgetRpm: config.configuredRpm,
    budgetProbe: null,
    nextBudgetStep: config.budgetStep,
    nextBudgetProbeAt: now + config.budgetProbeIntervalMs,
    budgetBackoff: 1,
    paceProbe: null,
    paceRaises: [],
    nextPaceStep: config.paceStep,
    nextPaceProbeAt: now,
    paceBackoff: 1,
    tat: now,
    grownAt: now,
    lastGrantAt: now,
    lastLimitedAt: 0,
    budgetFullAt: 0,
    lastDecreaseAt: 0,
    lastRateDecreaseAt: 0,
    blockedUntil: 0,
    blockMs: config.blockMs,
    disabledReason: null,
    rampFloorRpm: null,
    log: emptySendLog(now),
    leases: {},
    inFlightCap: null,
    capRaisedAt: 0,
    capLimitedAt: 0,
    nextCapProbeAt: 0,
    capBackoff: 1,
    okHigh: { since: now, inFlight: 0, count: 0, previousInFlight: 0, previousCount: 0 },
    window: { startedAt: now, grants: 0, throttles: 0, prevGrants: 0, prevThrottles: 0, prevSpanMs: 0 },
  };
}

/** Calls that may be sent in any trailing 60 s right now, a running probe included. */
export function currentBudget(state: PaceState, config: PaceConfig): number {
  return Math.min(config.maxRpm, state.budgetRpm * (1 + (state.budgetProbe?.step ?? 0)));
}

/**
 * The fastest pace the budget allows: the budget spread evenly over the minute (a window of any
 * length then sees its share of the minute at most — running ahead while the budget has room
 * fills a 60-s window's allowance early, but overruns a 15-s window; the window's length is not
 * known). During a budget probe, faster by twice its step, so the trailing count reaches the
 * probe's limit in about half a minute instead of never (the count check stops it there).
 */
function budgetPaceRpm(state: PaceState, config: PaceConfig): number {
  return Math.min(config.maxRpm, state.budgetRpm * (1 + 2 * (state.budgetProbe?.step ?? 0)));
}

/** The pace the fleet settles at. */
export function targetRpm(state: PaceState, config: PaceConfig): number {
  const ceiling = Math.min(state.ceilingRpm ?? config.maxRpm, budgetPaceRpm(state, config));
  return Math.min(config.maxRpm, Math.max(config.minRpm, ceiling * config.headroom));
}

export type Reservation = { granted: true; at: number; lease: LeaseInfo } | { granted: false; retryInMs: number };

export interface ReserveRequest {
  /** A job with priority may reserve further ahead than bulk work. */
  urgent: boolean;
  /** Names the call while it is in flight; its report releases it. */
  leaseId: string;
}

/** The call a report is about, as it was granted: what its throttle, if any, can be read against. */
export interface LeaseInfo {
  id: string;
  /** Calls in flight, this one included, when it was granted (reports recount it for when it went out). */
  inFlight: number;
  /**
   * Calls the upstream took in the trailing 60 s, this one included, at its slot, at least: sent,
   * less those throttled (which use no quota on the limiters we know; the budget counts them anyway).
   */
  count: number;
  /** The budget (without a probe's excess) when it was granted. */
  budgetRpm: number;
}

/** Reserves the next slot, or says how long to wait before asking again. */
export function reserve(previous: PaceState, now: number, config: PaceConfig, request: ReserveRequest): { state: PaceState; reservation: Reservation } {
  const state = rollWindow(structuredClone(previous), now);
  const refuse = (retryInMs: number, limited = true) => {
    if (limited) state.lastLimitedAt = now;
    return { state, reservation: { granted: false as const, retryInMs: Math.max(1, Math.ceil(retryInMs)) } };
  };
  if (state.disabledReason !== null || now < state.blockedUntil) return refuse(state.blockedUntil - now, false);
  pruneLeases(state, now, config);
  if (state.inFlightCap !== null && unreported(state) >= state.inFlightCap) {
    state.capLimitedAt = now;
    return refuse(config.capPollMs);
  }

  evolve(state, now, config);
  const slot = Math.max(state.tat, now);
  const horizonMs = state.inFlightCap !== null ? config.capHorizonMs : request.urgent ? config.horizonMs : config.bulkHorizonMs;
  if (slot - now > horizonMs) return refuse(slot - now - horizonMs);
  // The trailing-60-s budget, counted in whole seconds: the slot's second and the 60 before it, so
  // the count covers every 60-s window that ends at the slot (a limiter counts to the millisecond).
  const count = countUpTo(state.log, 'sent', slot, BUDGET_SECONDS) + 1;
  if (count > currentBudget(state, config)) {
    state.budgetFullAt = now;
    return refuse((Math.floor(slot / 1000) + 1) * 1000 - now);
  }
  const probe = state.budgetProbe;
  if (count > state.budgetRpm && probe) {
    // The probe's excess goes out one call at a time, so a refusal costs one throttle, not a burst.
    if (slot < probe.lastExcessAt + config.probeSpacingMs) return refuse(probe.lastExcessAt + config.probeSpacingMs - now);
    probe.lastExcessAt = slot;
  }
  if (count >= state.budgetRpm) state.budgetFullAt = now;
  // What the upstream took, as a lower bound: the 60 whole seconds ending with the slot's, less
  // the throttled calls (a throttled call uses no quota on the limiters we know).
  const taken = countUpTo(state.log, 'sent', slot, 60) + 1 - countUpTo(state.log, 'throttled', slot, BUDGET_SECONDS);
  if (slot > now) state.lastLimitedAt = now;
  followRampGuard(state, slot, config);
  state.tat = slot + 60_000 / state.rpm;
  state.lastGrantAt = now;
  state.window.grants += 1;
  recordEvent(state.log, 'sent', slot);
  const inFlight = unreported(state) + 1;
  state.leases[request.leaseId] = [slot, 0];
  return { state, reservation: { granted: true, at: slot, lease: { id: request.leaseId, inFlight, count: taken, budgetRpm: state.budgetRpm } } };
}

/**
 * Reserves a slot for each of several callers at one instant (the calls waiting in one process,
 * granted with one compare-and-set instead of one each). Priority callers are served first, so a
 * bulk caller refused beyond its shorter horizon never stands in a priority caller's way. The
 * reservations come back in the callers' order.
 */
export function reserveEach(previous: PaceState, now: number, config: PaceConfig, requests: readonly ReserveRequest[]): { state: PaceState; reservations: Reservation[] } {
  let state = previous;
  const reservations: Reservation[] = new Array<Reservation>(requests.length);
  const order = requests.map((_, i) => i).sort((a, b) => Number(requests[b]?.urgent) - Number(requests[a]?.urgent));
  for (const i of order) {
    const out = reserve(state, now, config, requests[i] as ReserveRequest);
    state = out.state;
    reservations[i] = out.reservation;
  }
  return { state, reservations };
}

/** Time-driven changes: slow start after idle, the probes' lives, growth, the in-flight cap's probe. */
function evolve(state: PaceState, now: number, config: PaceConfig): void {
  const demand = now - state.lastLimitedAt < config.demandMs;
  // Slow start after idle: a ramp guard punishes going from nothing to full speed.
  if (now - state.lastGrantAt > config.idleMs && state.tat <= now) {
    state.rpm = Math.max(config.minRpm, Math.min(state.rpm, targetRpm(state, config) / 2));
    state.grownAt = now;
    state.rampFloorRpm = null;
  }
  // A budget probe that never got its excess accepted (no demand, or no room) ends without a verdict.
  if (state.budgetProbe && now - state.budgetProbe.since > 60_000) {
    state.budgetProbe = null;
    state.nextBudgetProbeAt = now + budgetProbeIntervalMs(state, config);
  }
  // The budget binds: calls were refused by it lately, or the pace runs at it (spread evenly, the
  // pace keeps the count just under the budget).
  const budgetFull = now - state.budgetFullAt < config.demandMs || (state.rpm >= 0.97 * targetRpm(state, config) && (state.ceilingRpm ?? Infinity) >= state.budgetRpm);
  if (!state.budgetProbe && demand && budgetFull && now >= state.nextBudgetProbeAt && state.budgetRpm < config.maxRpm) {
    const below = state.budgetRpm < config.configuredRpm;
    // Below the configured quota a step never passes it: that crossing is a probe of its own.
    const step = below ? Math.min(Math.max(state.nextBudgetStep, config.budgetRecoveryStep), config.configuredRpm / state.budgetRpm - 1) : state.nextBudgetStep;
    state.budgetProbe = { step: Math.min(step, config.maxRpm / state.budgetRpm - 1), fromRpm: state.budgetRpm, since: now, lastExcessAt: 0 };
  }
  const paceProbe = state.paceProbe;
  if (paceProbe && now - paceProbe.since >= config.paceHoldMs) {
    const holdSeconds = Math.max(1, Math.floor(config.paceHoldMs / 1000) - 1);
    // The faster pace was used: more was sent than the old ceiling's pace allowed.
    const used = ratePerMinute(state.log, 'sent', now, holdSeconds) >= paceProbe.fromRpm * config.headroom;
    if (used) {
      // Held: the upstream took the faster pace. The next step, if the budget still has room, is bigger.
      state.paceRaises.push({ at: now, fromRpm: paceProbe.fromRpm });
      state.nextPaceStep = Math.min(config.maxPaceStep, paceProbe.step * 2);
      state.paceBackoff = 1;
    } else {
      // Something else held calls back (the in-flight cap, demand): no evidence either way.
      state.ceilingRpm = paceProbe.fromRpm;
      state.nextPaceProbeAt = now + config.paceProbeIntervalMs * state.paceBackoff;
    }
    state.paceProbe = null;
  }
  state.paceRaises = state.paceRaises.filter((raise) => now - raise.at < config.paceUndoMs);
  const target = targetRpm(state, config);
  const room = countUpTo(state.log, 'sent', now, BUDGET_SECONDS) < config.roomShare * state.budgetRpm;
  // The ceiling is probed back up towards the budget (after per-second throttles lowered it, or
  // after a budget probe raised the budget), never past it.
  const ceiling = state.ceilingRpm;
  const budget = budgetPaceRpm(state, config);
  if (!state.paceProbe && ceiling !== null && ceiling < budget && demand && (room || state.budgetProbe) && now >= state.nextPaceProbeAt && state.rpm >= 0.97 * target) {
    state.paceProbe = { fromRpm: ceiling, step: state.nextPaceStep, since: now };
    state.ceilingRpm = Math.min(budget, ceiling * (1 + state.nextPaceStep));
  }
  // Growth by elapsed time while below target; at once down to it when above.
  const goal = targetRpm(state, config);
  const elapsed = Math.max(0, now - state.grownAt) / 1000;
  state.rpm = state.rpm < goal ? Math.min(goal, state.rpm * (1 + config.growthPerSecond) ** elapsed) : goal;
  state.grownAt = Math.max(state.grownAt, now);
  // The in-flight cap is raised by one after a quiet interval in which it held calls back.
  if (state.inFlightCap !== null && now - state.capLimitedAt < config.demandMs && now >= state.nextCapProbeAt) {
    if (state.capRaisedAt > 0 && now - state.capRaisedAt >= config.capProbeIntervalMs) state.capBackoff = 1;
    state.inFlightCap += 1;
    state.capRaisedAt = now;
    state.nextCapProbeAt = now + config.capProbeIntervalMs * state.capBackoff;
  }
}

function budgetProbeIntervalMs(state: PaceState, config: PaceConfig): number {
  const base = state.budgetRpm < config.configuredRpm ? config.budgetRecoveryIntervalMs : config.budgetProbeIntervalMs;
  return base * state.budgetBackoff;
}

/**
 * After a ramp throttle, grow as the guard allows (at most `rampFactor` × the fleet's average over
 * the last seconds) rather than at a fixed rate, up to the configured quota — beyond it the
 * usual growth goes on — unless the guard tripped above it already.
 */
function followRampGuard(state: PaceState, slot: number, config: PaceConfig): void {
  if (state.rampFloorRpm === null) return;
  const target = targetRpm(state, config);
  const end = state.rampFloorRpm < config.configuredRpm ? Math.min(target, config.configuredRpm * config.headroom) : target;
  const seconds = Math.max(1, config.rampWindowSeconds);
  const recent = (countUpTo(state.log, 'sent', slot - 1000, seconds) / seconds) * 60;
  state.rpm = Math.min(end, Math.max(state.rampFloorRpm, config.rampFactor * recent));
  if (state.rpm >= end) state.rampFloorRpm = null;
}

export type Feedback =
  | { kind: 'ok'; lease?: LeaseInfo | undefined }
  /** `ramp`: the code names a ramp guard (`Throttling.BurstRate`); `unnamed`: it names no cause (`Throttling`). */
  | { kind: 'throttled'; lease?: LeaseInfo | undefined; retryAfterMs?: number | undefined; ramp?: boolean | undefined; unnamed?: boolean | undefined }
  | { kind: 'timeout'; lease?: LeaseInfo | undefined }
  /** The call failed otherwise, or was never sent (cancelled while it waited): it only stops being in flight. */
  | { kind: 'released'; lease?: LeaseInfo | undefined }
  | { kind: 'disabled'; reason: string; lease?: LeaseInfo | undefined }
  | { kind: 'enabled' };

/** Applies what the upstream said about a call made at this pace. */
export function applyFeedback(previous: PaceState, now: number, feedback: Feedback, config: PaceConfig): PaceState {
  const state = rollWindow(structuredClone(previous), now);
  const lease = feedback.kind !== 'enabled' && feedback.lease ? endLease(state, now, feedback.lease) : undefined;
  switch (feedback.kind) {
    case 'ok':
      recordEvent(state.log, 'accepted', now);
      state.blockMs = config.blockMs;
      if (lease) onAccepted(state, now, lease, config);
      return state;
    case 'throttled':
      recordEvent(state.log, 'throttled', now);
      state.window.throttles += 1;
      if (feedback.retryAfterMs !== undefined) state.blockedUntil = Math.max(state.blockedUntil, now + feedback.retryAfterMs);
      if (feedback.ramp) onRampThrottle(state, now, config);
      else if (lease && isConcurrencyThrottle(state, now, lease, config, feedback.unnamed === true)) onConcurrencyThrottle(state, now, lease, config);
      else if (lease && isWindowThrottle(state, lease, config)) onWindowThrottle(state, now, lease, config);
      else onPerSecondThrottle(state, now, config);
      return state;
    case 'timeout':
      if (now - state.lastDecreaseAt >= config.decreaseCooldownMs) {
        state.rpm = Math.max(config.minRpm, state.rpm * config.timeoutDecrease);
        state.rampFloorRpm = null;
        state.lastDecreaseAt = now;
        state.grownAt = Math.max(state.grownAt, now);
      }
      return state;
    case 'released':
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

/** An accepted call: its highs are what the upstream takes; a probe's excess accepted raises the budget. */
function onAccepted(state: PaceState, now: number, lease: LeaseInfo, config: PaceConfig): void {
  if (now - state.okHigh.since >= 60_000) {
    const stale = now - state.okHigh.since >= 120_000;
    state.okHigh = { since: now, inFlight: 0, count: 0, previousInFlight: stale ? 0 : state.okHigh.inFlight, previousCount: stale ? 0 : state.okHigh.count };
  }
  state.okHigh.inFlight = Math.max(state.okHigh.inFlight, lease.inFlight);
  state.okHigh.count = Math.max(state.okHigh.count, lease.count);
  const probe = state.budgetProbe;
  if (!probe || lease.count <= state.budgetRpm) return;
  const wasBelow = state.budgetRpm < config.configuredRpm;
  state.budgetRpm = Math.min(config.maxRpm, lease.count);
  // A probe whose excess is being taken goes on; only one that gets none for a minute ends.
  probe.since = now;
  state.budgetBackoff = 1;
  if (wasBelow && state.budgetRpm >= config.configuredRpm) {
    // Back at the configured quota: above it, probing starts small and waits again.
    state.budgetProbe = null;
    state.nextBudgetStep = config.budgetStep;
    state.nextBudgetProbeAt = now + config.budgetProbeIntervalMs;
  } else if (state.budgetRpm >= probe.fromRpm * (1 + probe.step)) {
    // The whole step was taken: the next, from here, is twice as big.
    probe.step = Math.min(config.maxBudgetStep, probe.step * 2);
    probe.fromRpm = state.budgetRpm;
    state.nextBudgetStep = probe.step;
  }
}

function okHighInFlight(state: PaceState): number {
  return Math.max(state.okHigh.inFlight, state.okHigh.previousInFlight);
}

function okHighCount(state: PaceState): number {
  return Math.max(state.okHigh.count, state.okHigh.previousCount);
}

/**
 * The number of calls in flight explains it, rather than a rate: the call went out at more calls
 * in flight than any accepted call lately, or at the cap while the cap — not the pace — was
 * holding calls back.
 */
function isConcurrencyThrottle(state: PaceState, now: number, lease: LeaseInfo, config: PaceConfig, unnamed: boolean): boolean {
  if (lease.inFlight < 2) return false;
  if (state.inFlightCap === null && unnamed) {
    // A throttle whose code names no cause is the concurrency's when its call went out at as many
    // calls in flight as any accepted call: our count spans each whole request, so it runs a call
    // or so above the upstream's, and "more than any accepted" would rarely hold.
    return lease.inFlight >= okHighInFlight(state);
  }
  if (state.inFlightCap === null) {
    // A code that names a rate is believed unless the calls in flight contradict it: in the first
    // half minute calls in flight and the rate rise together, so a throttle then is the rate's;
    // after it, one above every accepted call's calls in flight is not.
    const history = now - state.okHigh.since >= 30_000 || state.okHigh.previousInFlight > 0;
    return history && lease.inFlight > okHighInFlight(state);
  }
  const paceBound = ratePerMinute(state.log, 'sent', now, config.measureSeconds) >= 0.9 * state.rpm;
  return lease.inFlight >= state.inFlightCap && !paceBound;
}

function onConcurrencyThrottle(state: PaceState, now: number, lease: LeaseInfo, config: PaceConfig): void {
  if (state.inFlightCap !== null && now - state.capRaisedAt < config.capProbeIntervalMs) {
    state.capBackoff = Math.min(config.maxProbeBackoff, state.capBackoff * 2);
  }
  state.inFlightCap = Math.max(1, Math.min(state.inFlightCap ?? Infinity, lease.inFlight - 1));
  state.capRaisedAt = 0;
  state.nextCapProbeAt = now + config.capProbeIntervalMs * state.capBackoff;
}

/** A call at the budget's edge, at a trailing-60-s count never accepted lately: the window's limit is below it. */
function isWindowThrottle(state: PaceState, lease: LeaseInfo, config: PaceConfig): boolean {
  return lease.count >= config.windowEdge * lease.budgetRpm && lease.count > okHighCount(state);
}

function onWindowThrottle(state: PaceState, now: number, lease: LeaseInfo, config: PaceConfig): void {
  state.budgetRpm = Math.max(config.minRpm, Math.min(state.budgetRpm, lease.count - 1));
  if (state.budgetProbe) {
    state.budgetProbe = null;
    state.nextBudgetStep = config.budgetStep;
    state.budgetBackoff = Math.min(config.maxProbeBackoff, state.budgetBackoff * 2);
  }
  state.nextBudgetProbeAt = now + budgetProbeIntervalMs(state, config);
}

/**
 * The per-second rate: the first such throttle undoes a ceiling step just taken, or lowers the
 * ceiling to the pace; if they persist, what got through over the last seconds is the capacity;
 * if nothing gets through, the fleet waits instead of slowing down.
 */
function onPerSecondThrottle(state: PaceState, now: number, config: PaceConfig): void {
  const probe = state.paceProbe;
  if (probe) {
    // The step explains it: the limit lies between the level that held and the step, so the next
    // step is half this one.
    state.ceilingRpm = probe.fromRpm;
    state.paceProbe = null;
    state.nextPaceStep = Math.max(config.paceStep / 2, probe.step / 2);
    state.paceBackoff = Math.min(config.maxProbeBackoff, state.paceBackoff * 2);
  }
  state.nextPaceProbeAt = Math.max(state.nextPaceProbeAt, now + config.paceProbeIntervalMs * state.paceBackoff);
  if (now - state.lastDecreaseAt < config.decreaseCooldownMs) return;
  const persisting = !probe && now - state.lastRateDecreaseAt < config.persistMs;
  if (!persisting) {
    if (!probe) {
      // The quota is at most the pace of a second ago (the pace grows while a 1-s window fills), or the pace itself when steady.
      const growing = state.grownAt <= now && state.rpm < targetRpm(state, config);
      const paceBound = growing ? state.rpm / (1 + config.growthPerSecond) : state.rpm;
      state.ceilingRpm = Math.max(config.minRpm, Math.min(state.ceilingRpm ?? Infinity, paceBound));
    }
    state.rpm = Math.max(config.minRpm, Math.min(state.rpm, targetRpm(state, config)) * config.decrease);
  } else {
    const sent = ratePerMinute(state.log, 'sent', now, config.measureSeconds);
    const accepted = ratePerMinute(state.log, 'accepted', now, config.measureSeconds);
    if (accepted < 0.1 * sent) {
      // Almost nothing gets through: a window is used up, or the limit is not a rate. Wait, keep the pace.
      state.blockedUntil = Math.max(state.blockedUntil, now + state.blockMs);
      state.blockMs = Math.min(config.maxBlockMs, state.blockMs * 2);
    } else {
      // The decrease did not stop them. A bucket may have absorbed the recent raises for a while:
      // undo them all, and step down again.
      const first = state.paceRaises[0];
      if (first) {
        // A limiter that takes a faster pace for a while and then refuses it: probe it rarely.
        state.ceilingRpm = first.fromRpm;
        state.paceBackoff = Math.min(config.maxProbeBackoff, state.paceBackoff * 2);
        state.nextPaceProbeAt = now + config.paceUndoMs * state.paceBackoff;
      }
      state.paceRaises = [];
      // What got through is the capacity: after a quota drop the pace goes there at once
      // instead of stepping down a share every cool-down.
      state.ceilingRpm = Math.max(config.minRpm, Math.min((state.ceilingRpm ?? config.maxRpm) * config.decrease, state.rpm * config.decrease, accepted / config.headroom));
      state.rpm = Math.max(config.minRpm, Math.min(state.rpm, targetRpm(state, config)));
    }
  }
  if (!probe) state.lastRateDecreaseAt = now;
  state.rampFloorRpm = null;
  state.grownAt = Math.max(state.grownAt, now);
  state.lastDecreaseAt = now;
  // Slots already handed out at the old pace stay; new ones follow the new spacing.
  state.tat = Math.max(state.tat, now + 60_000 / state.rpm);
}

/**
 * A ramp throttle ("rate increased too quickly") says nothing about the quota but shows a guard
 * that compares this second with the seconds before it: growing again at once trips it again.
 */
function onRampThrottle(state: PaceState, now: number, config: PaceConfig): void {
  if (now - state.lastDecreaseAt < config.decreaseCooldownMs) return;
  state.rpm = Math.max(config.minRpm, state.rpm * config.rampDecrease);
  state.grownAt = now + config.rampHoldMs;
  state.rampFloorRpm = state.rpm;
  state.lastDecreaseAt = now;
  state.tat = Math.max(state.tat, now + 60_000 / state.rpm);
}

/**
 * Reported leases are kept this long, and at most this many, for counting what was in flight when
 * later reports' calls went out (a call's report comes one latency after it went out). The bound
 * keeps the state small when calls are many and fast.
 */
const REPORTED_KEPT_MS = 3_000;
const REPORTED_KEPT_MAX = 24;

function pruneLeases(state: PaceState, now: number, config: PaceConfig): void {
  const reported: [string, number][] = [];
  for (const [id, [slot, reportedAt]] of Object.entries(state.leases)) {
    if (reportedAt > 0 ? reportedAt + REPORTED_KEPT_MS <= now : slot + config.leaseTtlMs <= now) delete state.leases[id];
    else if (reportedAt > 0) reported.push([id, reportedAt]);
  }
  if (reported.length > REPORTED_KEPT_MAX) {
    reported.sort((a, b) => a[1] - b[1]);
    for (const [id] of reported.slice(0, reported.length - REPORTED_KEPT_MAX)) delete state.leases[id];
  }
}

function unreported(state: PaceState): number {
  let n = 0;
  for (const [, reportedAt] of Object.values(state.leases)) if (reportedAt === 0) n++;
  return n;
}

/**
 * Marks the lease reported, and returns it with the calls in flight when its call went out (this
 * one included): those whose slot came first and that were not reported by then. A call granted
 * a moment before its slot would otherwise count calls that ended in between.
 */
function endLease(state: PaceState, now: number, lease: LeaseInfo): LeaseInfo {
  const entry = state.leases[lease.id];
  if (!entry) return lease;
  const [sentAt] = entry;
  entry[1] = now;
  let inFlight = 0;
  for (const [slot, reportedAt] of Object.values(state.leases)) if (slot <= sentAt && (reportedAt === 0 || reportedAt > sentAt)) inFlight++;
  return { ...lease, inFlight: Math.max(1, inFlight) };
}

/** Utilisation and throttle ratio over roughly the last minute. */
export function paceView(state: PaceState, now: number, config: PaceConfig) {
  const rolled = rollWindow(structuredClone(state), now);
  pruneLeases(rolled, now, config);
  const span = Math.max(1_000, now - rolled.window.startedAt + rolled.window.prevSpanMs);
  const grants = rolled.window.grants + rolled.window.prevGrants;
  const throttles = rolled.window.throttles + rolled.window.prevThrottles;
  const target = targetRpm(rolled, config);
  return {
    rpm: round(rolled.rpm),
    ceilingRpm: rolled.ceilingRpm === null ? null : round(rolled.ceilingRpm),
    targetRpm: round(target),
    /** Calls allowed in any trailing 60 s (a running probe's excess not included), and calls sent in the last one. */
    budgetRpm: round(rolled.budgetRpm),
    sentLastMinute: countUpTo(rolled.log, 'sent', now, BUDGET_SECONDS),
    probing: rolled.budgetProbe !== null || rolled.paceProbe !== null,
    inFlight: unreported(rolled),
    inFlightCap: rolled.inFlightCap,
    /** Calls sent over the last minute, as a share of the budget. */
    utilisation: round(((grants / span) * 60_000) / Math.min(rolled.budgetRpm, target)),
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
