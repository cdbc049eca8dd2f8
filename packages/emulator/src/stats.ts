import { SlidingWindow } from './sliding-window.js';

/** A snapshot of what the emulator has seen since start or the last reset. */
export interface EmulatorStats {
  /** Every POST to the generation path, whatever its outcome. */
  requests: number;
  /** Requests that passed the quota guard (they used rate-limit quota). */
  accepted: number;
  /** Requests rejected by the quota guard (429). Injected `Throttling*` faults are not counted here. */
  throttled: number;
  /** `throttled` split by code (`Throttling.RateQuota`, `Throttling.BurstRate`, and `Throttling` from the concurrency model). */
  throttledByCode: Record<string, number>;
  /**
   * Every error answer to a generation request by code, quota throttles included. Gateway faults
   * count as `Gateway502`/`Gateway504`. Dropped sockets are not answers and count in `dropped`.
   */
  errorsByCode: Record<string, number>;
  /** Billed images: every success, including `dropAfterBilling` and clients that hung up. */
  imagesGenerated: number;
  /** Sum of the list price of `imagesGenerated` for the configured region (USD). */
  billedUsd: number;
  /** Image GETs answered 200. */
  downloads: number;
  /** Image GETs answered 403 (bad signature or expired). */
  downloadsRejected: number;
  /** Sockets destroyed by a `drop` or `dropAfterBilling` fault. */
  dropped: number;
  /** Billed requests whose client had already disconnected when the answer was ready. */
  clientDisconnects: number;
  /** Generation requests currently open. Not cleared by a reset. */
  inFlight: number;
  peakInFlight: number;
  /** Most generation POSTs (throttled and invalid ones included) arriving in any 1 s window. */
  peakRequestsPerSecond: number;
  /** Same over any 60 s window. */
  peakRequestsPerMinute: number;
  /** Most accepted requests in any 1 s window. */
  peakAcceptedPerSecond: number;
  /** Most accepted requests in any 60 s window. */
  peakAcceptedPerMinute: number;
  /** ISO time of start or of the last reset. */
  startedAt: string;
}

type Counter = Exclude<
  keyof EmulatorStats,
  'throttledByCode' | 'errorsByCode' | 'billedUsd' | 'startedAt'
>;

/** Mutable bookkeeping behind `EmulatorStats`; `now` values come from a monotonic clock. */
export class StatsRecorder {
  #counters = zeroCounters();
  #throttledByCode: Record<string, number> = {};
  #errorsByCode: Record<string, number> = {};
  /** Integer micro-dollars, so sums of prices such as 0.01434 stay exact. */
  #billedMicroUsd = 0;
  #startedAt = new Date();
  readonly #arrivalsSecond = new SlidingWindow(1000);
  readonly #arrivalsMinute = new SlidingWindow(60_000);
  readonly #acceptedSecond = new SlidingWindow(1000);
  readonly #acceptedMinute = new SlidingWindow(60_000);

  arrived(now: number): void {
    const c = this.#counters;
    c.requests++;
    c.inFlight++;
    c.peakInFlight = Math.max(c.peakInFlight, c.inFlight);
    c.peakRequestsPerSecond = Math.max(c.peakRequestsPerSecond, bump(this.#arrivalsSecond, now));
    c.peakRequestsPerMinute = Math.max(c.peakRequestsPerMinute, bump(this.#arrivalsMinute, now));
  }

  /** The request's connection or response is finished; exactly once per `arrived`. */
  settled(): void {
    this.#counters.inFlight--;
  }

  accepted(now: number): void {
    const c = this.#counters;
    c.accepted++;
    c.peakAcceptedPerSecond = Math.max(c.peakAcceptedPerSecond, bump(this.#acceptedSecond, now));
    c.peakAcceptedPerMinute = Math.max(c.peakAcceptedPerMinute, bump(this.#acceptedMinute, now));
  }

  throttled(code: string): void {
    this.#counters.throttled++;
    increment(this.#throttledByCode, code);
  }

  error(code: string): void {
    increment(this.#errorsByCode, code);
  }

  billed(priceMicroUsd: number): void {
    this.#counters.imagesGenerated++;
    this.#billedMicroUsd += priceMicroUsd;
  }

  count(counter: 'downloads' | 'downloadsRejected' | 'dropped' | 'clientDisconnects'): void {
    this.#counters[counter]++;
  }

  snapshot(): EmulatorStats {
    const c = this.#counters;
    return {
      requests: c.requests,
      accepted: c.accepted,
      throttled: c.throttled,
      throttledByCode: { ...this.#throttledByCode },
      errorsByCode: { ...this.#errorsByCode },
      imagesGenerated: c.imagesGenerated,
      billedUsd: this.#billedMicroUsd / 1e6,
      downloads: c.downloads,
      downloadsRejected: c.downloadsRejected,
      dropped: c.dropped,
      clientDisconnects: c.clientDisconnects,
      inFlight: c.inFlight,
      peakInFlight: c.peakInFlight,
      peakRequestsPerSecond: c.peakRequestsPerSecond,
      peakRequestsPerMinute: c.peakRequestsPerMinute,
      peakAcceptedPerSecond: c.peakAcceptedPerSecond,
      peakAcceptedPerMinute: c.peakAcceptedPerMinute,
      startedAt: this.#startedAt.toISOString(),
    };
  }

  /** Clears everything but the live `inFlight` gauge, which seeds the new `peakInFlight`. */
  reset(): void {
    const inFlight = this.#counters.inFlight;
    this.#counters = { ...zeroCounters(), inFlight, peakInFlight: inFlight };
    this.#throttledByCode = {};
    this.#errorsByCode = {};
    this.#billedMicroUsd = 0;
    this.#startedAt = new Date();
    for (const w of [this.#arrivalsSecond, this.#arrivalsMinute, this.#acceptedSecond, this.#acceptedMinute]) {
      w.clear();
    }
  }
}

function zeroCounters(): Record<Counter, number> {
  return {
    requests: 0,
    accepted: 0,
    throttled: 0,
    imagesGenerated: 0,
    downloads: 0,
    downloadsRejected: 0,
    dropped: 0,
    clientDisconnects: 0,
    inFlight: 0,
    peakInFlight: 0,
    peakRequestsPerSecond: 0,
    peakRequestsPerMinute: 0,
    peakAcceptedPerSecond: 0,
    peakAcceptedPerMinute: 0,
  };
}

function bump(window: SlidingWindow, now: number): number {
  window.push(now);
  return window.count(now);
}

function increment(record: Record<string, number>, key: string): void {
  record[key] = (record[key] ?? 0) + 1;
}
