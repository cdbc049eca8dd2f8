/**
 * Cancelling a batch's, a pipeline's or a tenant's jobs by filter: state (`waiting`, which covers `prioritized`, `delayed`,
 * `active`) and creation time, with a dry run that counts what would be cancelled and changes
 * nothing. Each job goes through `cancelJob`, so its batch counts it, its event is published, and
 * one whose image is already paid for is stored, never given up.
 */
import { AppError } from '@zimage/shared';
import { cancelJob, type BatchCancelOutcome } from './cancel-job.js';
import type { ProducerContext } from './producer-context.js';
import { readJob, TERMINAL_JOB_STATES, type JobState } from './read-models.js';
import { inScope, scopeJobIds, scopeOf, type ScopeFields } from './job-scope.js';

/** The states a job can be cancelled in, as a filter. */
export const CANCELLABLE_STATES = ['waiting', 'delayed', 'active'] as const;
export type CancellableState = (typeof CANCELLABLE_STATES)[number];

/** Exactly one of batchId, pipeline (every batch its ticks made) or tenant. */
export interface BulkCancelFilter extends ScopeFields {
  state?: CancellableState | undefined;
  /** Jobs created at or after this time. */
  createdAfter?: Date | undefined;
  /** Jobs created before this time. */
  createdBefore?: Date | undefined;
}

export interface BulkCancelOutcome extends BatchCancelOutcome {
  /** Unfinished jobs the filter matched. */
  matched: number;
  dryRun: boolean;
}

export async function bulkCancel(context: ProducerContext, filter: BulkCancelFilter, options: { dryRun?: boolean } = {}): Promise<BulkCancelOutcome> {
  if (filter.state !== undefined && !(CANCELLABLE_STATES as readonly string[]).includes(filter.state)) {
    throw new AppError('REQUEST_INVALID', `state: must be one of ${CANCELLABLE_STATES.join(', ')}`);
  }
  const scope = await scopeOf(context, filter);
  const dryRun = options.dryRun === true;
  const outcome: BulkCancelOutcome = { matched: 0, cancelled: 0, cancelling: 0, storing: 0, finished: 0, dryRun };
  for await (const ids of scopeJobIds(context, scope, 'unfinished')) {
    for (const id of ids) {
      const job = await readJob(context, id);
      if (!job || TERMINAL_JOB_STATES.has(job.state) || !inScope(scope, job.payload) || !matches(filter, job.state, Date.parse(job.createdAt))) continue;
      outcome.matched += 1;
      if (dryRun) continue;
      try {
        outcome[(await cancelJob(context, id)).state] += 1;
      } catch (error) {
        // Finished between the read and the cancel.
        if (error instanceof AppError && (error.code === 'JOB_NOT_CANCELLABLE' || error.code === 'JOB_NOT_FOUND')) outcome.finished += 1;
        else throw error;
      }
    }
  }
  return outcome;
}

function matches(filter: BulkCancelFilter, state: JobState, createdAt: number): boolean {
  if (filter.state !== undefined) {
    const wanted = filter.state === 'waiting' ? ['waiting', 'prioritized', 'paused'] : [filter.state];
    if (!wanted.includes(state)) return false;
  }
  if (filter.createdAfter && createdAt < filter.createdAfter.getTime()) return false;
  if (filter.createdBefore && createdAt >= filter.createdBefore.getTime()) return false;
  return true;
}
