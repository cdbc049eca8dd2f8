import type { LatencyOptions, LimiterModel, QuotaOptions } from './emulator-options.js';

/**
 * Why a request is throttled: `Throttling.RateQuota` for every rate rule, `Throttling.BurstRate`
 * only from the per-second model's ramp guard, `Throttling` for the concurrency cap.
 */
export type ThrottleCode = 'Throttling' | 'Throttling.RateQuota' | 'Throttling.BurstRate';

/** What a limiter reads: the quota, and the latency (the concurrency model's capacity needs it). */
export interface LimiterSettings {
  readonly quota: QuotaOptions;
  readonly latency: LatencyOptions;
}

/**
 * One rate-limiter model. Every time is on the limiter's own clock (the emulator passes
 * `performance.now()`); callers convert other clocks before asking. Calls pass non-decreasing
 * times. Throttled requests never use quota.
 */
export interface RateLimiter {
  readonly model: LimiterModel;
  /** Time of the first `tryAccept` (the limiter's start), or `undefined` before any. */
  readonly startedAt: number | undefined;
  /** Records the request as accepted and returns `undefined`, or returns why it is throttled. */
  tryAccept(now: number): ThrottleCode | undefined;
  /** An accepted request has been answered (or abandoned). Only the concurrency model cares. */
  onDone(now: number): void;
  /**
   * The most requests this model could accept in `[fromMs, toMs)` given its configuration (its
   * "true capacity", see each model); `0` for an empty interval. Before the start, a model whose
   * rule depends on the start assumes it starts at `fromMs`.
   */
  capacity(fromMs: number, toMs: number): number;
  /** The quota in force at `at` (req/min): the rate `capacity()` assumes at that time. */
  quotaRpm(at: number): number;
}

/** State a rebuilt limiter inherits: requests accepted by its predecessor and still unanswered. */
export interface LimiterInit {
  readonly inFlight: number;
}

export const MINUTE_MS = 60_000;

/** The sustainable per-minute rate of an `rps` + `rpm` rule pair: whichever binds. */
export function sustainableRpm(quota: Pick<QuotaOptions, 'rpm' | 'rps'>): number {
  return Math.min(quota.rpm, quota.rps * 60);
}

/** Requests per window: `max(1, floor(rpm × windowMs / 60000))` (`Infinity` when unlimited). */
export function windowLimit(rpm: number, windowMs: number): number {
  return Math.max(1, Math.floor((rpm * windowMs) / MINUTE_MS));
}

/**
 * Rounds a duration to 1 ns. Epoch ms mapped onto `performance.now()` pick up float error
 * (`start + 3000 − start` can be `3000.0000000000005`), which would tip a `ceil` or `floor` over
 * a window count; durations below 1 ns are not meaningful anyway.
 */
export function snapMs(ms: number): number {
  return Math.round(ms * 1e6) / 1e6;
}
