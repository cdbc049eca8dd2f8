/**
 * Cancelling a batch's jobs by filter: state (`waiting`, which covers `prioritized`, `delayed`,
 * `active`) and creation time, with a dry run that counts what would be cancelled and changes
 * nothing. Each job goes through `cancelJob`, so its batch counts it, its event is published, and
 * one whose image is already paid for is stored, never given up.
 */
import { AppError, batchJobsKey, batchKey } from '@zimage/shared';
import { cancelJob, type BatchCancelOutcome } from './cancel-job.js';
import type { ProducerContext } from './producer-context.js';
import { readJob, TERMINAL_JOB_STATES, type JobState } from './read-models.js';

/** The states a job can be cancelled in, as a filter. */
export const CANCELLABLE_STATES = ['waiting', 'delayed', 'active'] as const;
export type CancellableState = (typeof CANCELLABLE_STATES)[number];

export interface BulkCancelFilter {
  batchId: string;
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

const SCAN_COUNT = 500;

export async function bulkCancel(context: ProducerContext, filter: BulkCancelFilter, options: { dryRun?: boolean } = {}): Promise<BulkCancelOutcome> {
  if (filter.state !== undefined && !(CANCELLABLE_STATES as readonly string[]).includes(filter.state)) {
    throw new AppError('REQUEST_INVALID', `state: must be one of ${CANCELLABLE_STATES.join(', ')}`);
  }
  if (!(await context.connection.exists(batchKey(context.prefix, filter.batchId)))) throw new AppError('JOB_NOT_FOUND', `no batch ${filter.batchId}`);
  const dryRun = options.dryRun === true;
  const outcome: BulkCancelOutcome = { matched: 0, cancelled: 0, cancelling: 0, storing: 0, finished: 0, dryRun };
  let cursor = '0';
  do {
    const [next, ids] = await context.connection.sscan(batchJobsKey(context.prefix, filter.batchId), cursor, 'COUNT', SCAN_COUNT);
    cursor = next;
    for (const id of ids) {
      const job = await readJob(context, id);
      if (!job || TERMINAL_JOB_STATES.has(job.state) || !matches(filter, job.state, Date.parse(job.createdAt))) continue;
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
  } while (cursor !== '0');
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
