/**
 * The one boundary where our errors become BullMQ control flow:
 * - `never`     → `UnrecoverableError`: fail now, keep the remaining attempts unused;
 * - `throttle`  → `queue.rateLimit(ms)` + `RateLimitError`: every worker stops fetching for a
 *                 while and the job returns to the queue without using an attempt;
 * - `account`   → the queue is paused for an operator (see `pauseForAccount`), and the job returns
 *                 to the queue without using an attempt;
 * - `transient` → rethrown; BullMQ retries it with our backoff strategy.
 * The message keeps our stable code in front ("UPSTREAM_INTERNAL: ..."), so `failedReason` says it.
 */
import { AppError } from '@zimage/shared';
import { RateLimitError, UnrecoverableError } from 'bullmq';

export function failureMessage(error: AppError): string {
  return `${error.code}: ${error.message}`;
}

export function toUnrecoverable(error: AppError): UnrecoverableError {
  const unrecoverable = new UnrecoverableError(failureMessage(error));
  (unrecoverable as Error & { cause?: unknown }).cause = error;
  return unrecoverable;
}

export function toRetryable(error: AppError): Error {
  const retryable = new Error(failureMessage(error), { cause: error });
  // Read by the custom backoff strategy to honour Retry-After on transient errors.
  (retryable as Error & { retryAfterMs?: number }).retryAfterMs = error.retryAfterMs;
  return retryable;
}

export function rateLimited(): RateLimitError {
  return new RateLimitError();
}
