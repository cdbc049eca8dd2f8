import type { QuotaOptions } from './emulator-options.js';
import type { RateLimiter, ThrottleCode } from './rate-limiter.js';
import { MINUTE_MS } from './rate-limiter.js';

/** Absorbs float error in the refill sum, so 0.1 + 0.2 + … tokens still make a whole one. */
const EPSILON = 1e-9;

/**
 * `'token-bucket'`: a bucket of `bucketSize` tokens, full at the start, refilled continuously at
 * `rpm / 60` tokens per second up to `bucketSize`. Each accepted request takes one token; with
 * less than one token left the request gets `Throttling.RateQuota` (and takes nothing).
 *
 * True capacity over an interval of `T` ms: `bucketSize + rpm / 60000 × T` (a full bucket, then
 * the refill).
 *
 * `bucketSize` is fixed at construction (changing it rebuilds the limiter); `rpm` is read live,
 * each refill using the rate in force when it is computed.
 */
export class TokenBucketLimiter implements RateLimiter {
  readonly model = 'token-bucket';
  readonly #size: number;
  #startedAt: number | undefined;
  #tokens: number;
  #refilledAt = 0;

  constructor(private readonly options: () => QuotaOptions) {
    this.#size = options().bucketSize;
    this.#tokens = this.#size;
  }

  get startedAt(): number | undefined {
    return this.#startedAt;
  }

  /** Tokens in the bucket at `now` (refilling first). */
  tokens(now: number): number {
    this.#refill(now);
    return this.#tokens;
  }

  tryAccept(now: number): ThrottleCode | undefined {
    if (this.#startedAt === undefined) {
      this.#startedAt = now;
      this.#refilledAt = now;
    }
    this.#refill(now);
    if (this.#tokens < 1 - EPSILON) return 'Throttling.RateQuota';
    this.#tokens = Math.max(0, this.#tokens - 1);
    return undefined;
  }

  onDone(): void {
    // Not a concurrency model.
  }

  capacity(fromMs: number, toMs: number): number {
    return toMs > fromMs ? this.#size + (this.options().rpm * (toMs - fromMs)) / MINUTE_MS : 0;
  }

  quotaRpm(): number {
    return this.options().rpm;
  }

  #refill(now: number): void {
    if (this.#startedAt === undefined) return; // Full until the start.
    const elapsed = Math.max(0, now - this.#refilledAt);
    const rpm = this.options().rpm;
    // `Infinity × 0` is NaN: an unlimited rate simply keeps the bucket full.
    const added = rpm === Infinity ? Infinity : (rpm / MINUTE_MS) * elapsed;
    this.#tokens = Math.min(this.#size, this.#tokens + added);
    this.#refilledAt = Math.max(this.#refilledAt, now);
  }
}
