import type { EmulatorOptions, EmulatorOptionsInput } from './emulator-options.js';
import type { FaultStep } from './fault-catalogue.js';
import type { LimiterReport } from './managed-limiter.js';
import type { EmulatorStats } from './stats.js';

/** A running DashScope z-image-turbo stand-in. `await using` closes it. */
export interface Emulator extends AsyncDisposable {
  /** Origin to use as `DASHSCOPE_BASE_URL`, e.g. `http://127.0.0.1:43123` (no trailing slash). */
  readonly url: string;
  readonly port: number;
  /** A snapshot copy of the counters. */
  stats(): EmulatorStats;
  /**
   * The rate limiter in force (`quota.model`): its start, accepted and throttled counts, its true
   * capacity and a per-second timeline, all in epoch ms. A rebuild by `configure()` starts it
   * afresh; `resetStats()` does not touch it.
   */
  readonly limiter: LimiterReport;
  /** A copy of the options in force. */
  options(): EmulatorOptions;
  /**
   * Deep-merges `patch` into the options; takes effect for requests arriving afterwards. An
   * explicit `undefined` resets a field to its default; `randomSeed` reseeds the PRNG. A new
   * `quota.model` (or `windowMs`, `bucketSize`, `maxInFlight`, `drift` for the model using it)
   * rebuilds the limiter and resets its start. Throws on invalid values, and on `host`/`port`,
   * which are fixed once listening.
   */
  configure(patch: EmulatorOptionsInput): void;
  /**
   * Scripts the fault of each of the next generation requests that get past auth, validation,
   * quota and trigger words, in order and before any random rate. `'none'` lets one through.
   */
  failNext(...steps: FaultStep[]): void;
  resetStats(): void;
  /** Stops listening and destroys open sockets (in-flight requests are abandoned unbilled). Idempotent. */
  close(): Promise<void>;
}
