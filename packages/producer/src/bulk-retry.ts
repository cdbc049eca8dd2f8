/**
 * Retrying a batch's, a pipeline's or a tenant's failed jobs by filter: error code and creation time, with a dry run that
 * counts what would be retried (by code) and changes nothing.
 *
 * A retried job goes back to the queue with its data, so its checkpoint comes along: an image it
 * had paid for is stored from the checkpoint, not generated again (while the image's link lives).
 * It gets a fresh set of attempts and its `retries` count goes up, which gives its next terminal
 * event an incarnation, and so an event id, of its own (a re-failure is published and counted, not
 * dropped as a repeat). Its batch stops counting it as failed and, if it had completed, runs again
 * in a new round, completing once more (under new event ids) when its jobs are terminal again.
 *
 * Cancelled and expired jobs are not retried: a cancel was asked for, and an expired job's
 * deadline has passed (it would expire again at once); enqueue those again instead.
 */
import { AppError, reopenBatchJob, type JobPayload, type JobResult } from '@zimage/shared';
import { Job } from 'bullmq';
import type { ProducerContext } from './producer-context.js';
import { inScope, scopeJobIds, scopeOf, type ScopeFields } from './job-scope.js';

const NOT_RETRIED = new Set(['JOB_CANCELLED', 'JOB_EXPIRED']);
const CODE = /^[A-Z][A-Z0-9_]{1,63}$/;

/** Exactly one of batchId, pipeline (every batch its ticks made) or tenant. */
export interface BulkRetryFilter extends ScopeFields {
  /** Only jobs that failed with this error code (docs/errors.md), e.g. UPSTREAM_CONTENT_REJECTED. */
  code?: string | undefined;
  /** Jobs created at or after this time. */
  createdAfter?: Date | undefined;
  /** Jobs created before this time. */
  createdBefore?: Date | undefined;
}

export interface BulkRetryOutcome {
  /** Failed jobs the filter matched. */
  matched: number;
  /** Moved back to the queue (0 in a dry run). */
  retried: number;
  /** Matched, but retried by someone else (or removed) before this could. */
  finished: number;
  /** Matched jobs by the code they failed with. */
  byCode: Record<string, number>;
  dryRun: boolean;
}

export async function bulkRetry(context: ProducerContext, filter: BulkRetryFilter, options: { dryRun?: boolean } = {}): Promise<BulkRetryOutcome> {
  if (filter.code !== undefined && !CODE.test(filter.code)) throw new AppError('REQUEST_INVALID', 'code: must be an error code such as UPSTREAM_CONTENT_REJECTED (docs/errors.md)');
  if (filter.code !== undefined && NOT_RETRIED.has(filter.code)) {
    throw new AppError('REQUEST_INVALID', `code: ${filter.code} jobs are not retried (a cancel was asked for, or the deadline has passed); enqueue them again`);
  }
  const scope = await scopeOf(context, filter);
  const dryRun = options.dryRun === true;
  const outcome: BulkRetryOutcome = { matched: 0, retried: 0, finished: 0, byCode: {}, dryRun };
  for await (const ids of scopeJobIds(context, scope, 'failed')) {
    for (const id of ids) {
      const job = (await Job.fromId(context.queue, id)) as Job<JobPayload, JobResult> | undefined;
      if (!job?.finishedOn || !job.failedReason || !inScope(scope, job.data)) continue;
      const code = failureCode(job.failedReason);
      if (NOT_RETRIED.has(code) || !matches(filter, code, job.timestamp)) continue;
      if ((await job.getState()) !== 'failed') continue;
      outcome.matched += 1;
      outcome.byCode[code] = (outcome.byCode[code] ?? 0) + 1;
      if (dryRun) continue;
      if (await retryFailed(context, job, code)) outcome.retried += 1;
      else outcome.finished += 1;
    }
  }
  return outcome;
}

/** Moves one failed job back to the queue; false when it was no longer failed. */
async function retryFailed(context: ProducerContext, job: Job<JobPayload, JobResult>, code: string): Promise<boolean> {
  // The new count first: whichever run takes the job after the move has its own incarnation. If
  // the move then fails (someone else moved it), the count has only gone up: still unique.
  await job.updateData({ ...job.data, retries: (job.data.retries ?? 0) + 1 });
  try {
    await job.retry('failed', { resetAttemptsMade: true, resetAttemptsStarted: true });
  } catch {
    return false;
  }
  if (job.data.batchId) await reopenBatchJob(context.connection, job.data.batchId, code, context.publish);
  return true;
}

/** The code of a BullMQ failedReason ("CODE: message", as to-bullmq-error.ts writes it). */
function failureCode(failedReason: string): string {
  const code = failedReason.split(':', 1)[0] ?? '';
  return CODE.test(code) ? code : 'INTERNAL';
}

function matches(filter: BulkRetryFilter, code: string, createdAt: number): boolean {
  if (filter.code !== undefined && code !== filter.code) return false;
  if (filter.createdAfter && createdAt < filter.createdAfter.getTime()) return false;
  if (filter.createdBefore && createdAt >= filter.createdBefore.getTime()) return false;
  return true;
}
