/**
 * Cancelling: a job that has not started is removed and never runs; a running one has its
 * upstream request aborted by the worker holding it; one whose image is paid for is stored.
 */
import {
  AppError,
  batchJobsKey,
  batchKey,
  cancelChannel,
  cancelledJobKey,
  cancelRequestKey,
  DEFAULT_PUBLISH_OPTIONS,
  isHeldDelay,
  jobIncarnation,
  leaveLane,
  makeEvent,
  publishJobEvent,
  type JobPayload,
  type JobResult,
} from '@zimage/shared';
import { Job } from 'bullmq';
import type { ProducerContext } from './producer-context.js';

export interface CancelOutcome {
  jobId: string;
  /**
   * `cancelled`: done (it had not started); `cancelling`: it is running, the worker is aborting it
   * (should its image be paid for by then, it is stored); `storing`: its image is already paid
   * for, so it is not cancelled: it finishes storing and succeeds.
   */
  state: 'cancelled' | 'cancelling' | 'storing';
}

export interface BatchCancelOutcome {
  cancelled: number;
  cancelling: number;
  storing: number;
  /** Jobs that had already finished. */
  finished: number;
}

/** What `getJob` shows of a job removed before it ran (its BullMQ hash is gone). */
export interface CancelledRecord {
  payload: JobPayload;
  createdAt: string;
  cancelledAt: string;
}

export async function cancelJob(context: ProducerContext, jobId: string): Promise<CancelOutcome> {
  const { connection, queue, prefix } = context;
  const state = await queue.getJobState(jobId);
  if (state === 'unknown') {
    if (await connection.exists(cancelledJobKey(prefix, jobId))) throw new AppError('JOB_NOT_CANCELLABLE', `job ${jobId} is already cancelled`);
    throw new AppError('JOB_NOT_FOUND', `no job ${jobId}`);
  }
  if (state === 'completed' || state === 'failed') throw new AppError('JOB_NOT_CANCELLABLE', `job ${jobId} has already ${state === 'completed' ? 'succeeded' : 'failed'}`);
  const job = await Job.fromId<JobPayload, JobResult>(queue, jobId);
  if (!job) throw new AppError('JOB_NOT_CANCELLABLE', `job ${jobId} has just finished`);
  // Its image is paid for (a delayed job waiting for storage looks "not started"): removing it
  // would throw the image away. It finishes storing instead, and the answer says so.
  if (job.data.checkpoint?.generated) return { jobId, state: 'storing' };
  // First the flag: a worker that takes this incarnation of the job from now on ends it before
  // any upstream call. Its value is the job's creation time, so a job re-submitted later under
  // the same id (the same idempotency key) is not cancelled by a flag meant for this one.
  await connection.set(cancelRequestKey(prefix, jobId), String(job.timestamp), 'EX', context.retentionSeconds);
  if (state !== 'active') {
    // remove() refuses a job a worker has just locked: then it is active, and handled as such.
    const removed = await queue.remove(jobId).then((n) => n === 1, () => false);
    if (removed) {
      if (isHeldDelay(job.delay)) await leaveLane(connection, prefix, job.data.tenant, jobId);
      await recordCancelled(context, job);
      return { jobId, state: 'cancelled' };
    }
  }
  await connection.publish(cancelChannel(prefix), jobId);
  return { jobId, state: 'cancelling' };
}

/** Cancels every job of the batch that has not finished. */
export async function cancelBatch(context: ProducerContext, batchId: string): Promise<BatchCancelOutcome> {
  const { connection, prefix } = context;
  if (!(await connection.exists(batchKey(prefix, batchId)))) throw new AppError('JOB_NOT_FOUND', `no batch ${batchId}`);
  await connection.hset(batchKey(prefix, batchId), 'cancelRequestedAt', new Date().toISOString());
  const outcome: BatchCancelOutcome = { cancelled: 0, cancelling: 0, storing: 0, finished: 0 };
  let cursor = '0';
  do {
    const [next, ids] = await connection.sscan(batchJobsKey(prefix, batchId), cursor, 'COUNT', 500);
    cursor = next;
    for (const id of ids) {
      try {
        const result = await cancelJob(context, id);
        outcome[result.state] += 1;
      } catch (error) {
        if (error instanceof AppError && (error.code === 'JOB_NOT_CANCELLABLE' || error.code === 'JOB_NOT_FOUND')) outcome.finished += 1;
        else throw error;
      }
    }
  } while (cursor !== '0');
  return outcome;
}

/** A job removed before it ran: keep what GET needs, and count it in its batch, with its event. */
async function recordCancelled(context: ProducerContext, job: Job<JobPayload, JobResult>): Promise<void> {
  const jobId = String(job.id);
  const now = new Date().toISOString();
  const payload = job.data;
  const record: CancelledRecord = { payload, createdAt: new Date(job.timestamp).toISOString(), cancelledAt: now };
  await context.connection.set(cancelledJobKey(context.prefix, jobId), JSON.stringify(record), 'EX', context.retentionSeconds);
  const event = makeEvent(
    'job.failed',
    jobId,
    { jobId, batchId: payload.batchId, metadata: payload.metadata ?? {}, error: { code: 'JOB_CANCELLED', message: 'cancelled before it started; never sent upstream' }, attempts: 0 },
    now,
  );
  await publishJobEvent(
    context.connection,
    {
      event,
      outcome: 'cancelled',
      manifest: { jobId, line: payload.line, rowKey: payload.rowKey, status: 'cancelled', errorCode: 'JOB_CANCELLED' },
      webhook: payload.webhook,
      incarnation: jobIncarnation(job.timestamp, payload),
    },
    { ...DEFAULT_PUBLISH_OPTIONS, ...context.publish },
  );
}
