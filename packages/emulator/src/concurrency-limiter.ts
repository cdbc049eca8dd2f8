import type { LatencyOptions, QuotaOptions } from './emulator-options.js';
import type { LimiterInit, RateLimiter, ThrottleCode } from './rate-limiter.js';
import { MINUTE_MS, sustainableRpm } from './rate-limiter.js';
import { SlidingWindow } from './sliding-window.js';

const SECOND_MS = 1000;

/**
 * `'concurrency'`: at most `maxInFlight` requests accepted and not yet answered. A request that
 * arrives at the cap gets `Throttling` ("Requests throttling triggered."), checked before the rate
 * rule: at most `rps` accepted in the trailing 1 s and `rpm` in the trailing 60 s
 * (`Throttling.RateQuota`; no ramp guard). `onDone()` frees a slot once the request is answered.
 *
 * True capacity over an interval of `T` ms: `min(min(rpm, 60 × rps) × T / 60000, maxInFlight × T
 * / meanLatencyMs)`, with `meanLatencyMs = (latency.minMs + latency.maxMs) / 2` of the current
 * options (the `prompt_extend` extra is ignored; a mean of 0 leaves only the rate term).
 *
 * `maxInFlight` is fixed at construction (changing it rebuilds the limiter); `rpm`, `rps` and the
 * latency are read live.
 */
export class ConcurrencyLimiter implements RateLimiter {
  readonly model = 'concurrency';
  readonly #maxInFlight: number;
  readonly #second = new SlidingWindow(SECOND_MS);
  readonly #minute = new SlidingWindow(MINUTE_MS);
  #startedAt: number | undefined;
  #inFlight: number;

  constructor(
    private readonly options: () => QuotaOptions,
    private readonly latency: () => LatencyOptions,
    init: LimiterInit = { inFlight: 0 },
  ) {
    this.#maxInFlight = options().maxInFlight;
    this.#inFlight = init.inFlight;
  }

  get startedAt(): number | undefined {
    return this.#startedAt;
  }

  /** Requests accepted and not yet answered. */
  get inFlight(): number {
    return this.#inFlight;
  }

  tryAccept(now: number): ThrottleCode | undefined {
    this.#startedAt ??= now;
    if (this.#inFlight >= this.#maxInFlight) return 'Throttling';
    const quota = this.options();
    if (this.#second.count(now) + 1 > quota.rps || this.#minute.count(now) + 1 > quota.rpm) {
      return 'Throttling.RateQuota';
    }
    this.#second.push(now);
    this.#minute.push(now);
    this.#inFlight++;
    return undefined;
  }

  onDone(): void {
    this.#inFlight = Math.max(0, this.#inFlight - 1);
  }

  capacity(fromMs: number, toMs: number): number {
    return toMs > fromMs ? (this.quotaRpm() * (toMs - fromMs)) / MINUTE_MS : 0;
  }

  /** `min(rate rule, maxInFlight / meanLatency)` per minute. */
  quotaRpm(): number {
    const { minMs, maxMs } = this.latency();
    const meanLatencyMs = (minMs + maxMs) / 2;
    const byConcurrency = meanLatencyMs > 0 ? (this.#maxInFlight * MINUTE_MS) / meanLatencyMs : Infinity;
    return Math.min(sustainableRpm(this.options()), byConcurrency);
  }
}
