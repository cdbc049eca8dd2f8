import { performance } from 'node:perf_hooks';
import { createLimiter, limiterKey } from './create-limiter.js';
import type { LimiterModel } from './emulator-options.js';
import type { LimiterSettings, RateLimiter, ThrottleCode } from './rate-limiter.js';
import { TimeLog } from './time-log.js';

/** How much per-request history the report keeps (runs last minutes; a CLI emulator may run for days). */
const RETENTION_MS = 24 * 60 * 60 * 1000;
const SECOND_MS = 1000;

export interface LimiterCounts {
  accepted: number;
  throttled: number;
}

export interface LimiterSecond {
  /** Epoch second (`Math.floor(epochMs / 1000)`). */
  second: number;
  accepted: number;
  throttled: number;
  /** The quota in force at the start of that second (req/min): the rate `capacity()` assumes. */
  quotaRpm: number;
}

/**
 * What the emulator's rate limiter did, for benchmarks. Every time is epoch ms (`Date.now()`), and
 * everything describes the current limiter: a `configure()` that rebuilds it (a new `model`, or a
 * new `windowMs`, `bucketSize`, `maxInFlight` or `drift` for the model using it) starts afresh.
 * Only the limiter's own throttles count; injected `Throttling*` faults do not.
 */
export interface LimiterReport {
  readonly model: LimiterModel;
  /** Epoch ms of the limiter's start (its first request), or `undefined` before any. */
  readonly startedAt: number | undefined;
  /** Generation requests the limiter accepted / throttled at epoch ms in `[fromMs, toMs)`. Defaults: whole life. */
  counts(fromMs?: number, toMs?: number): LimiterCounts;
  /**
   * The most requests this model could have accepted in `[fromMs, toMs)` (epoch ms) given its
   * configuration now (its "true capacity"):
   * - per-second: `min(rpm, 60 × rps) × T / 60000`, `T = toMs − fromMs` (the sustainable rate);
   * - fixed-window: `limit ×` the windows (aligned to the start) that overlap the interval;
   * - sliding-log: `limit × ceil(T / windowMs)`;
   * - token-bucket: `bucketSize + rpm / 60000 × T`;
   * - concurrency: `min(min(rpm, 60 × rps) × T / 60000, maxInFlight × T / meanLatencyMs)`;
   * - drift: `∫ rpm(t) / 60000 dt` over the interval.
   */
  capacity(fromMs: number, toMs: number): number;
  /** Per epoch second overlapping `[fromMs, toMs)` (at most 24 h of them), that whole second's counts and quota. */
  timeline(fromMs: number, toMs: number): LimiterSecond[];
}

/** The limiter's outcome for one request. `done()` must be called once it is answered (idempotent). */
export interface Admission {
  readonly code: ThrottleCode | undefined;
  done(): void;
}

export interface LimiterClock {
  /** The clock the emulator passes as `now` (monotonic). */
  monotonic(): number;
  /** Wall-clock epoch ms, the time base of the report. */
  epoch(): number;
}

const SYSTEM_CLOCK: LimiterClock = { monotonic: () => performance.now(), epoch: () => Date.now() };
const NOTHING_TO_RELEASE = (): void => {};

/**
 * Owns the emulator's current `RateLimiter`: rebuilds it when the model's structure changes,
 * tracks the accepted requests still unanswered across rebuilds (so the concurrency cap cannot
 * leak), and records each outcome at its epoch time for the `LimiterReport`.
 */
export class ManagedLimiter {
  #limiter: RateLimiter;
  #key: string;
  /** Accepted requests whose `done()` has not run, whichever limiter accepted them. */
  #unanswered = 0;
  #startedAtEpoch: number | undefined;
  /** The limiter's start on its own clock; with `#startedAtEpoch` it maps epoch ms to that clock. */
  #startedAtMonotonic = 0;
  #lastEpoch = -Infinity;
  readonly #accepted = new TimeLog(RETENTION_MS);
  readonly #throttled = new TimeLog(RETENTION_MS);
  readonly #seconds = new Map<number, LimiterCounts>();
  readonly report: LimiterReport;

  constructor(
    private readonly options: () => LimiterSettings,
    private readonly clock: LimiterClock = SYSTEM_CLOCK,
  ) {
    this.#limiter = createLimiter(options);
    this.#key = limiterKey(options().quota);
    const current = (): RateLimiter => this.#limiter;
    const startedAt = (): number | undefined => this.#startedAtEpoch;
    this.report = Object.freeze({
      get model(): LimiterModel {
        return current().model;
      },
      get startedAt(): number | undefined {
        return startedAt();
      },
      counts: (fromMs?: number, toMs?: number) => this.counts(fromMs, toMs),
      capacity: (fromMs: number, toMs: number) => this.capacity(fromMs, toMs),
      timeline: (fromMs: number, toMs: number) => this.timeline(fromMs, toMs),
    });
  }

  /** Accepted requests not yet answered. */
  get unanswered(): number {
    return this.#unanswered;
  }

  /** Asks the limiter about a generation request arriving at `at` (the monotonic clock). */
  admit(at: number): Admission {
    const now = tick(at);
    const limiter = this.#limiter;
    const code = limiter.tryAccept(now);
    // Clamped so that a wall-clock step back cannot unsort the logs.
    const epoch = Math.max(this.clock.epoch(), this.#lastEpoch);
    this.#lastEpoch = epoch;
    (code === undefined ? this.#accepted : this.#throttled).push(epoch);
    if (this.#startedAtEpoch === undefined) {
      this.#startedAtEpoch = epoch;
      this.#startedAtMonotonic = limiter.startedAt ?? now;
    }
    this.#countSecond(epoch, code);
    if (code !== undefined) return { code, done: NOTHING_TO_RELEASE };
    this.#unanswered++;
    let released = false;
    return {
      code,
      done: () => {
        if (released) return;
        released = true;
        this.#unanswered--;
        // The current limiter, even after a rebuild: it inherited this request as in flight.
        this.#limiter.onDone(tick(this.clock.monotonic()));
      },
    };
  }

  /** Call after the options changed: rebuilds the limiter if its model or structure did. */
  reconfigure(): void {
    const key = limiterKey(this.options().quota);
    if (key === this.#key) return;
    this.#key = key;
    this.#limiter = createLimiter(this.options, { inFlight: this.#unanswered });
    this.#startedAtEpoch = undefined;
    this.#startedAtMonotonic = 0;
    this.#accepted.clear();
    this.#throttled.clear();
    this.#seconds.clear();
  }

  counts(fromMs?: number, toMs?: number): LimiterCounts {
    return { accepted: this.#accepted.count(fromMs, toMs), throttled: this.#throttled.count(fromMs, toMs) };
  }

  capacity(fromMs: number, toMs: number): number {
    checkInterval(fromMs, toMs);
    return this.#limiter.capacity(this.#toLimiterClock(fromMs), this.#toLimiterClock(toMs));
  }

  timeline(fromMs: number, toMs: number): LimiterSecond[] {
    checkInterval(fromMs, toMs);
    const first = Math.floor(fromMs / SECOND_MS);
    const end = Math.ceil(toMs / SECOND_MS);
    if (end - first > RETENTION_MS / SECOND_MS) {
      throw new RangeError(`limiter.timeline covers at most 24 h (got ${toMs - fromMs} ms)`);
    }
    const rows: LimiterSecond[] = [];
    for (let second = first; second < end; second++) {
      const counts = this.#seconds.get(second);
      rows.push({
        second,
        accepted: counts?.accepted ?? 0,
        throttled: counts?.throttled ?? 0,
        quotaRpm: this.#limiter.quotaRpm(this.#toLimiterClock(second * SECOND_MS)),
      });
    }
    return rows;
  }

  /** Before the start any offset will do: the models that care assume they start at `fromMs`. */
  #toLimiterClock(epochMs: number): number {
    return this.#startedAtEpoch === undefined ? epochMs : this.#startedAtMonotonic + (epochMs - this.#startedAtEpoch);
  }

  #countSecond(epochMs: number, code: ThrottleCode | undefined): void {
    const second = Math.floor(epochMs / SECOND_MS);
    let counts = this.#seconds.get(second);
    if (counts === undefined) {
      counts = { accepted: 0, throttled: 0 };
      this.#seconds.set(second, counts);
      // Keys arrive in ascending order (times are clamped), so the oldest come first.
      for (const old of this.#seconds.keys()) {
        if (old >= second - RETENTION_MS / SECOND_MS) break;
        this.#seconds.delete(old);
      }
    }
    if (code === undefined) counts.accepted++;
    else counts.throttled++;
  }
}

/**
 * Rounds limiter-clock times to 1/1024 ms. The start is then a short binary fraction, so mapping a
 * whole-ms epoch interval onto the limiter clock (`start + (epoch − startEpoch)`) is exact, and a
 * window count or `T / windowMs` in `capacity()` does not pick up float error.
 */
function tick(ms: number): number {
  return Math.round(ms * 1024) / 1024;
}

function checkInterval(fromMs: number, toMs: number): void {
  if (!Number.isFinite(fromMs) || !Number.isFinite(toMs)) {
    throw new RangeError(`limiter interval must be finite epoch ms (got ${fromMs}, ${toMs})`);
  }
}
