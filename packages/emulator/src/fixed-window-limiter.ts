import type { QuotaOptions } from './emulator-options.js';
import type { RateLimiter, ThrottleCode } from './rate-limiter.js';
import { MINUTE_MS, snapMs, windowLimit } from './rate-limiter.js';

/**
 * `'fixed-window'`: consecutive windows of `windowMs`, aligned to the limiter's start (its first
 * request); each accepts at most `limit = max(1, floor(rpm × windowMs / 60000))`, and the count
 * resets at each boundary. So a client can send `limit` at the end of one window and `limit` more
 * at the start of the next.
 *
 * True capacity over `[from, to)`: `limit ×` the number of windows that overlap it. Time before the
 * start belongs to no window. Counting whole windows means a burst at the start of the first window
 * cannot make accepted / capacity exceed 1.
 *
 * `windowMs` is fixed at construction (changing it rebuilds the limiter); `rpm` is read live.
 */
export class FixedWindowLimiter implements RateLimiter {
  readonly model = 'fixed-window';
  readonly #windowMs: number;
  #startedAt: number | undefined;
  #window = -1;
  #acceptedInWindow = 0;

  constructor(private readonly options: () => QuotaOptions) {
    this.#windowMs = options().windowMs;
  }

  get startedAt(): number | undefined {
    return this.#startedAt;
  }

  /** Requests each window accepts. */
  get limit(): number {
    return windowLimit(this.options().rpm, this.#windowMs);
  }

  tryAccept(now: number): ThrottleCode | undefined {
    this.#startedAt ??= now;
    const window = Math.floor(Math.max(0, now - this.#startedAt) / this.#windowMs);
    if (window !== this.#window) {
      this.#window = window;
      this.#acceptedInWindow = 0;
    }
    if (this.#acceptedInWindow + 1 > this.limit) return 'Throttling.RateQuota';
    this.#acceptedInWindow++;
    return undefined;
  }

  onDone(): void {
    // Not a concurrency model.
  }

  capacity(fromMs: number, toMs: number): number {
    const start = this.#startedAt ?? fromMs;
    // Offsets from the start; the time before it belongs to no window.
    const from = snapMs(Math.max(0, fromMs - start));
    const to = snapMs(toMs - start);
    if (!(to > from)) return 0;
    const first = Math.floor(from / this.#windowMs);
    const last = Math.ceil(to / this.#windowMs) - 1;
    return this.limit * (last - first + 1);
  }

  quotaRpm(): number {
    return (this.limit * MINUTE_MS) / this.#windowMs;
  }
}
