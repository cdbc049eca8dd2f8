import type { DriftStep, QuotaOptions } from './emulator-options.js';
import type { RateLimiter, ThrottleCode } from './rate-limiter.js';
import { MINUTE_MS } from './rate-limiter.js';

const SECOND_MS = 1000;
/** Absorbs float error in `rpm / 60` (e.g. 0.1 × 60), so an integer rate stays an integer limit. */
const EPSILON = 1e-9;

/**
 * `'drift'`: a quota that changes over time. From `atMs` after the limiter's start, the quota is
 * that step's `rpm` (the last step holds forever; before the start, the first step). With an
 * empty schedule the quota is a constant `quota.rpm`, read live.
 *
 * Enforced as a per-second rule with no 60 s window and no ramp guard: with `r = rpm(t) / 60`
 * req/s, at most `n = max(1, ceil(r))` accepted in a trailing window of `1000 × n / r` ms. For an
 * integer `r ≥ 1` that is exactly "at most r in the trailing 1 s"; for a fractional `r` (e.g. 90
 * rpm = 1.5/s → 2 per 1333 ms) or `r < 1` (30 rpm → 1 per 2 s) it keeps the sustained rate at `r`
 * instead of rounding it, while always letting at least one request through.
 *
 * True capacity: `∫ rpm(t) / 60000 dt` over the interval, with `t` relative to the start (before
 * any request, the limiter is assumed to start at `fromMs`).
 *
 * The schedule is fixed at construction (changing it rebuilds the limiter).
 */
export class DriftLimiter implements RateLimiter {
  readonly model = 'drift';
  readonly #steps: readonly DriftStep[] | undefined;
  /** Accepted times, ascending; the dead prefix is `[0, #head)`. */
  #accepted: number[] = [];
  #head = 0;
  #startedAt: number | undefined;

  constructor(private readonly options: () => QuotaOptions) {
    const drift = options().drift;
    this.#steps = drift.length > 0 ? drift.map((step) => ({ ...step })) : undefined;
  }

  get startedAt(): number | undefined {
    return this.#startedAt;
  }

  /** The quota (req/min) in force at `at`. */
  quotaRpm(at: number): number {
    const steps = this.#schedule();
    const offset = this.#startedAt === undefined ? 0 : at - this.#startedAt;
    let rpm = steps[0]?.rpm ?? this.options().rpm;
    for (const step of steps) {
      if (step.atMs > offset) break;
      rpm = step.rpm;
    }
    return rpm;
  }

  tryAccept(now: number): ThrottleCode | undefined {
    this.#startedAt ??= now;
    const perSecond = this.quotaRpm(now) / 60;
    const limit = Math.max(1, Math.ceil(perSecond - EPSILON));
    const windowMs = (SECOND_MS * limit) / perSecond;
    this.#prune(now);
    if (this.#countSince(now - windowMs) + 1 > limit) return 'Throttling.RateQuota';
    this.#accepted.push(now);
    return undefined;
  }

  onDone(): void {
    // Not a concurrency model.
  }

  capacity(fromMs: number, toMs: number): number {
    if (!(toMs > fromMs)) return 0;
    const start = this.#startedAt ?? fromMs;
    const steps = this.#schedule();
    let requests = 0;
    steps.forEach((step, i) => {
      // The first step also covers everything before the start.
      const begin = i === 0 ? -Infinity : start + step.atMs;
      const end = start + (steps[i + 1]?.atMs ?? Infinity);
      const overlap = Math.min(end, toMs) - Math.max(begin, fromMs);
      if (overlap > 0) requests += (step.rpm * overlap) / MINUTE_MS;
    });
    return requests;
  }

  #schedule(): readonly DriftStep[] {
    return this.#steps ?? [{ atMs: 0, rpm: this.options().rpm }];
  }

  /** Accepted requests with a time `> after` (the trailing window is open at its old end). */
  #countSince(after: number): number {
    const times = this.#accepted;
    let lo = this.#head;
    let hi = times.length;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if ((times[mid] ?? Infinity) > after) hi = mid;
      else lo = mid + 1;
    }
    return times.length - lo;
  }

  /** Drops times older than the longest window the schedule can use. */
  #prune(now: number): void {
    const slowest = Math.min(...this.#schedule().map((step) => step.rpm));
    const longestWindowMs = Math.max(2 * SECOND_MS, (SECOND_MS * 60) / slowest);
    const times = this.#accepted;
    let head = this.#head;
    while (head < times.length && (times[head] ?? Infinity) <= now - longestWindowMs) head++;
    if (head > 1024 && head * 2 > times.length) {
      this.#accepted = times.slice(head);
      head = 0;
    }
    this.#head = head;
  }
}
