import type { QuotaOptions } from './emulator-options.js';
import { effectiveBurstFloor } from './emulator-options.js';
import type { RateLimiter, ThrottleCode } from './rate-limiter.js';
import { MINUTE_MS, sustainableRpm } from './rate-limiter.js';
import { SlidingWindow } from './sliding-window.js';

export type { ThrottleCode } from './rate-limiter.js';

const SECOND_MS = 1000;

/**
 * The account-level rate limiter: sliding windows over ACCEPTED requests only (a throttled request
 * does not use quota, so a client hammering the limit is not locked out forever).
 *
 * - `Throttling.RateQuota`: more than `rps` in the trailing 1 s or `rpm` in the trailing 60 s.
 * - `Throttling.BurstRate` (ramp detection): the current second may hold at most
 *   `max(floorPerSecond, factor × baseline)` requests, where baseline is the average accepted
 *   requests per second in the `baselineWindowMs` that precede the current second. So a cold
 *   client may start at the floor and then roughly double its rate every baseline window.
 *   The windows are disjoint on purpose: the current second must not inflate its own baseline.
 *
 * This is the `'per-second'` limiter model (the default). `rpm`, `rps` and `burst` are read live.
 * True capacity: the sustainable rate, `min(rpm, 60 × rps) × T / 60000` for an interval of `T` ms
 * (`rpm × T / 60000` when `rps ≥ rpm / 60`, as by default). A burst from idle can beat it over short
 * intervals; the excess is at most one window's worth (`rps`, or `rpm` when that binds).
 */
export class QuotaGuard implements RateLimiter {
  readonly model = 'per-second';
  #startedAt: number | undefined;
  readonly #second = new SlidingWindow(SECOND_MS);
  readonly #minute = new SlidingWindow(MINUTE_MS);
  /** Covers the current second plus the baseline window; minus `#second` gives the baseline. */
  readonly #secondAndBaseline = new SlidingWindow(SECOND_MS);

  constructor(private readonly options: () => QuotaOptions) {}

  get startedAt(): number | undefined {
    return this.#startedAt;
  }

  /** Records the request as accepted and returns `undefined`, or returns why it is throttled. */
  tryAccept(now: number): ThrottleCode | undefined {
    this.#startedAt ??= now;
    const quota = this.options();
    const inSecond = this.#second.count(now);
    if (inSecond + 1 > quota.rps || this.#minute.count(now) + 1 > quota.rpm) {
      return 'Throttling.RateQuota';
    }
    // Counted even when the guard is off, which also prunes the window so it cannot grow unbounded.
    this.#secondAndBaseline.windowMs = SECOND_MS + quota.burst.baselineWindowMs;
    const inBaseline = this.#secondAndBaseline.count(now) - inSecond;
    if (quota.burst.enabled && isBurst(inSecond, inBaseline, quota)) return 'Throttling.BurstRate';
    this.#second.push(now);
    this.#minute.push(now);
    this.#secondAndBaseline.push(now);
    return undefined;
  }

  onDone(): void {
    // Not a concurrency model.
  }

  capacity(fromMs: number, toMs: number): number {
    return toMs > fromMs ? (sustainableRpm(this.options()) * (toMs - fromMs)) / MINUTE_MS : 0;
  }

  quotaRpm(): number {
    return sustainableRpm(this.options());
  }
}

function isBurst(inSecond: number, inBaseline: number, quota: QuotaOptions): boolean {
  const baselinePerSecond = inBaseline / (quota.burst.baselineWindowMs / SECOND_MS);
  const allowed = Math.max(effectiveBurstFloor(quota), quota.burst.factor * baselinePerSecond);
  return inSecond + 1 > allowed;
}
