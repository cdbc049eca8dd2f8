/**
 * The one boundary where our errors become BullMQ control flow:
 * - `never`                        → `UnrecoverableError`: fail now, leave the remaining attempts;
 * - `transient` before generation  → rethrown as a plain Error; BullMQ retries it with the
 *                                    worker's backoff strategy (honouring Retry-After) and counts
 *                                    an attempt;
 * - everything that must not use an attempt (a throttle, a disabled account, a paused queue, a
 *   storage or download failure after the image was paid for) → `requeue`: the job moves to
 *   "delayed" and BullMQ's DelayedError contract returns it to the queue later, attempts intact.
 * The message keeps our stable code in front ("UPSTREAM_INTERNAL: ..."), so `failedReason` says it.
 */
import type { AppError } from '@zimage/shared';
import { DelayedError, UnrecoverableError } from 'bullmq';
import type { GenerationJob } from './generation-job.js';

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

/** Back to the queue after `delayMs`, without using an attempt. */
export async function requeue(job: GenerationJob, token: string | undefined, delayMs: number): Promise<DelayedError> {
  await job.moveToDelayed(Date.now() + Math.max(0, Math.round(delayMs)), token);
  return new DelayedError();
}

export function isBullmqControl(error: unknown): boolean {
  return error instanceof DelayedError || error instanceof UnrecoverableError || (error instanceof Error && error.message === 'bullmq:rateLimitExceeded');
}

