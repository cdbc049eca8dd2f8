/**
 * Backoff arithmetic: exponential with jitter, honouring a server's Retry-After. Pure functions;
 * BullMQ calls it through the worker's custom backoff strategy (transient errors before
 * generation), and the processor for retries of a paid image's download and store. Throttling is
 * not backed off per job: the governor slows the account instead.
 */

export interface BackoffPolicy {
  /** First delay, ms. */
  baseMs: number;
  /** Largest delay, ms. */
  maxMs: number;
  /** Share of the delay that is randomised, 0..1 (0.5: somewhere in [50%, 100%]). */
  jitter: number;
}

/** Transient errors: 1 s, 2 s, 4 s ... up to a minute. */
export const RETRY_BACKOFF: BackoffPolicy = { baseMs: 1_000, maxMs: 60_000, jitter: 0.5 };

/** Jobs are enqueued with this backoff type (@zimage/shared's generateJobOptions). */
export { BACKOFF_TYPE } from '@zimage/shared';

/**
 * Delay before the next try after `failures` consecutive failures (1 = first failure).
 * With Retry-After, the server's wait is used (plus up to 10% so a fleet does not return at once).
 */
export function backoffDelay(failures: number, policy: BackoffPolicy, retryAfterMs?: number, random: () => number = Math.random): number {
  if (retryAfterMs !== undefined && retryAfterMs >= 0) return Math.round(retryAfterMs * (1 + 0.1 * random()));
  const exponent = Math.max(0, failures - 1);
  const ceiling = Math.min(policy.maxMs, policy.baseMs * 2 ** Math.min(exponent, 30));
  const floor = ceiling * (1 - policy.jitter);
  return Math.round(floor + random() * (ceiling - floor));
}
