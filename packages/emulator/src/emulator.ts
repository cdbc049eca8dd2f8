import type { EmulatorOptions, EmulatorOptionsInput } from './emulator-options.js';
import type { FaultStep } from './fault-catalogue.js';
import type { EmulatorStats } from './stats.js';

/** A running DashScope z-image-turbo stand-in. `await using` closes it. */
export interface Emulator extends AsyncDisposable {
  /** Origin to use as `DASHSCOPE_BASE_URL`, e.g. `http://127.0.0.1:43123` (no trailing slash). */
  readonly url: string;
  readonly port: number;
  /** A snapshot copy of the counters. */
  stats(): EmulatorStats;
  /** A copy of the options in force. */
  options(): EmulatorOptions;
  /**
   * Deep-merges `patch` into the options; takes effect for requests arriving afterwards. An
   * explicit `undefined` resets a field to its default; `randomSeed` reseeds the PRNG. Throws on
   * invalid values, and on `host`/`port`, which are fixed once listening.
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
