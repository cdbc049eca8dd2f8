import type { QuotaOptions } from './emulator-options.js';
import type { RateLimiter, ThrottleCode } from './rate-limiter.js';
import { MINUTE_MS, snapMs, windowLimit } from './rate-limiter.js';
import { SlidingWindow } from './sliding-window.js';

/**
 * `'sliding-log'`: a log of accepted requests; at most `limit = max(1, floor(rpm × windowMs /
 * 60000))` in any trailing `windowMs` (a request at `t` counts while `now − t < windowMs`).
 *
 * True capacity over an interval of `T` ms: `limit × ceil(T / windowMs)`, since any `windowMs` of
 * it holds at most `limit`.
 *
 * `windowMs` is fixed at construction (changing it rebuilds the limiter); `rpm` is read live.
 */
export class SlidingLogLimiter implements RateLimiter {
  readonly model = 'sliding-log';
  readonly #log: SlidingWindow;
  #startedAt: number | undefined;

  constructor(private readonly options: () => QuotaOptions) {
    this.#log = new SlidingWindow(options().windowMs);
  }

  get startedAt(): number | undefined {
    return this.#startedAt;
  }

  /** Requests any trailing window accepts. */
  get limit(): number {
    return windowLimit(this.options().rpm, this.#log.windowMs);
  }

  tryAccept(now: number): ThrottleCode | undefined {
    this.#startedAt ??= now;
    if (this.#log.count(now) + 1 > this.limit) return 'Throttling.RateQuota';
    this.#log.push(now);
    return undefined;
  }

  onDone(): void {
    // Not a concurrency model.
  }

  capacity(fromMs: number, toMs: number): number {
    const length = snapMs(toMs - fromMs);
    return length > 0 ? this.limit * Math.ceil(length / this.#log.windowMs) : 0;
  }

  quotaRpm(): number {
    return (this.limit * MINUTE_MS) / this.#log.windowMs;
  }
}
