/**
 * Jobs a page at a time: a batch's jobs (its id set, `SSCAN`), optionally in one state, or the
 * whole queue's jobs in one BullMQ state (newest first).
 *
 * A batch's cursor is the scan's own cursor plus how far into that scan step the page got, so a
 * page is exactly `limit` long; like any Redis scan, a job added to the batch while a client
 * pages may be missed or (rarely) listed twice. The queue-wide cursor is an offset into BullMQ's
 * list for the state: jobs moving between states while a client pages shift it.
 */
import { AppError, batchJobsKey } from '@zimage/shared';
import type { ProducerContext } from './producer-context.js';
import { pageLimit } from './list-batches.js';
import { decodeCursor, encodeCursor } from './page-cursor.js';
import { readJob, type JobState, type JobView } from './read-models.js';

/** What a listing filters by: `waiting` covers BullMQ's `prioritized` too (jobs with a priority wait there). */
export const LISTED_JOB_STATES: readonly JobState[] = ['waiting', 'prioritized', 'delayed', 'active', 'completed', 'failed', 'cancelled'];
type QueueType = 'waiting' | 'prioritized' | 'delayed' | 'active' | 'completed' | 'failed';
/**
 * The BullMQ lists each state is read from without a batch, in the order they are paged. Jobs held
 * in a fair-share lane are in BullMQ's delayed set but waiting (`readJob` says so), so `waiting`
 * pages that set last and keeps only them.
 */
const QUEUE_TYPES: Partial<Record<JobState, readonly QueueType[]>> = {
  waiting: ['prioritized', 'waiting', 'delayed'],
  prioritized: ['prioritized'],
  delayed: ['delayed'],
  active: ['active'],
  completed: ['completed'],
  failed: ['failed'],
};

function matches(filter: JobState | undefined, state: JobState): boolean {
  return filter === undefined || state === filter || (filter === 'waiting' && state === 'prioritized');
}

export interface ListJobsOptions {
  batchId?: string | undefined;
  state?: JobState | undefined;
  /** @defaultValue 50; at most 500 */
  limit?: number | undefined;
  cursor?: string | undefined;
}

export interface JobPage {
  jobs: JobView[];
  nextCursor: string | null;
}

const MAX_EXAMINED = 5000;
/** SSCAN's COUNT: fixed, so that a cursor's `skip` means the same step whatever page size asks next. */
const SCAN_COUNT = 100;

interface ScanCursor {
  scan: string;
  skip: number;
}

interface OffsetCursor {
  /** Which of the state's BullMQ lists, and how far into it. */
  list: number;
  offset: number;
}

export async function listJobs(context: ProducerContext, options: ListJobsOptions): Promise<JobPage> {
  const limit = pageLimit(options.limit);
  if (options.state !== undefined && !LISTED_JOB_STATES.includes(options.state)) {
    throw new AppError('REQUEST_INVALID', `state: must be one of ${LISTED_JOB_STATES.join(', ')}`);
  }
  return options.batchId === undefined ? listQueueJobs(context, options.state, limit, options.cursor) : listBatchJobs(context, options.batchId, options.state, limit, options.cursor);
}

async function listBatchJobs(context: ProducerContext, batchId: string, state: JobState | undefined, limit: number, cursor: string | undefined): Promise<JobPage> {
  let at = cursor === undefined ? { scan: '0', skip: 0 } : decodeCursor<ScanCursor>(cursor, isScanCursor);
  const jobs: JobView[] = [];
  let examined = 0;
  for (;;) {
    const [next, ids] = await context.connection.sscan(batchJobsKey(context.prefix, batchId), at.scan, 'COUNT', SCAN_COUNT);
    const step = ids.slice(at.skip);
    const views = await Promise.all(step.map((id) => readJob(context, id)));
    for (const [i, view] of views.entries()) {
      examined += 1;
      if (view && matches(state, view.state)) jobs.push(view);
      if (jobs.length === limit || examined === MAX_EXAMINED) {
        const skip = at.skip + i + 1;
        const rest = skip < ids.length ? { scan: at.scan, skip } : next === '0' ? undefined : { scan: next, skip: 0 };
        return { jobs, nextCursor: rest ? encodeCursor(rest) : null };
      }
    }
    if (next === '0') return { jobs, nextCursor: null };
    at = { scan: next, skip: 0 };
  }
}

async function listQueueJobs(context: ProducerContext, state: JobState | undefined, limit: number, cursor: string | undefined): Promise<JobPage> {
  const types = state === undefined ? undefined : QUEUE_TYPES[state];
  if (types === undefined) {
    throw new AppError('REQUEST_INVALID', `state: without batchId, give one of ${Object.keys(QUEUE_TYPES).join(', ')} (cancelled jobs are listed per batch)`);
  }
  let at = cursor === undefined ? { list: 0, offset: 0 } : decodeCursor<OffsetCursor>(cursor, isOffsetCursor);
  const ids: string[] = [];
  while (at.list < types.length) {
    const want = limit - ids.length;
    // Ids, not jobs (a job removed meanwhile would shorten the answer and end the list early), and
    // one more than wanted, to know whether this list goes on.
    const found = await context.queue.getRanges([types[at.list] as QueueType], at.offset, at.offset + want, false);
    ids.push(...found.slice(0, want));
    if (found.length > want) {
      at = { list: at.list, offset: at.offset + want };
      break;
    }
    at = { list: at.list + 1, offset: 0 };
    if (ids.length === limit) break;
  }
  const views = await Promise.all(ids.map((id) => readJob(context, id)));
  return {
    // BullMQ's failed list also holds jobs cancelled while running; and a job may have moved on since.
    jobs: views.filter((view): view is JobView => view !== null && matches(state, view.state)),
    nextCursor: at.list < types.length ? encodeCursor(at) : null,
  };
}

function isScanCursor(value: unknown): value is ScanCursor {
  const v = value as ScanCursor;
  return typeof v === 'object' && v !== null && typeof v.scan === 'string' && /^\d{1,20}$/.test(v.scan) && Number.isInteger(v.skip) && v.skip >= 0 && v.skip <= 100_000;
}

function isOffsetCursor(value: unknown): value is OffsetCursor {
  const v = value as OffsetCursor;
  return typeof v === 'object' && v !== null && Number.isInteger(v.list) && v.list >= 0 && v.list < 3 && Number.isInteger(v.offset) && v.offset >= 0 && v.offset <= 10_000_000;
}
