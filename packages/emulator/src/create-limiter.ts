import { ConcurrencyLimiter } from './concurrency-limiter.js';
import { DriftLimiter } from './drift-limiter.js';
import type { QuotaOptions } from './emulator-options.js';
import { FixedWindowLimiter } from './fixed-window-limiter.js';
import { QuotaGuard } from './quota.js';
import type { LimiterInit, LimiterSettings, RateLimiter } from './rate-limiter.js';
import { SlidingLogLimiter } from './sliding-log-limiter.js';
import { TokenBucketLimiter } from './token-bucket-limiter.js';

/**
 * Builds the limiter of `options().quota.model`. The limiter keeps reading `options` for the
 * fields it reads live (`rpm`, `rps`, `burst`, latency); the fields in `limiterKey` are taken once.
 * `init.inFlight` seeds the concurrency model with requests its predecessor accepted and has not
 * answered yet, so a rebuild cannot open more slots than `maxInFlight`.
 */
export function createLimiter(options: () => LimiterSettings, init: LimiterInit = { inFlight: 0 }): RateLimiter {
  const quota = (): QuotaOptions => options().quota;
  const model = quota().model;
  switch (model) {
    case 'per-second':
      return new QuotaGuard(quota);
    case 'fixed-window':
      return new FixedWindowLimiter(quota);
    case 'sliding-log':
      return new SlidingLogLimiter(quota);
    case 'token-bucket':
      return new TokenBucketLimiter(quota);
    case 'concurrency':
      return new ConcurrencyLimiter(quota, () => options().latency, init);
    case 'drift':
      return new DriftLimiter(quota);
    default: {
      const unknown: never = model;
      throw new RangeError(`Unknown limiter model '${String(unknown)}'`);
    }
  }
}

/**
 * What identifies a limiter's structure: the model plus the fields it takes at construction. A
 * change of this key (through `configure()`) rebuilds the limiter; other quota fields apply live.
 */
export function limiterKey(quota: QuotaOptions): string {
  switch (quota.model) {
    case 'per-second':
      return 'per-second';
    case 'fixed-window':
    case 'sliding-log':
      return `${quota.model}:${quota.windowMs}`;
    case 'token-bucket':
      return `token-bucket:${quota.bucketSize}`;
    case 'concurrency':
      return `concurrency:${quota.maxInFlight}`;
    case 'drift':
      return `drift:${JSON.stringify(quota.drift)}`;
    default: {
      const unknown: never = quota.model;
      return String(unknown);
    }
  }
}
