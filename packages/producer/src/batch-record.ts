/**
 * The batch record (`{prefix}:batch:{id}`): created with its expected total, joined by later jobs,
 * corrected, aborted. Its counters are advanced by the event script as jobs end.
 */
import { AppError, adjustBatchTotal, batchIndexKey, batchKey, lastEventId, leaveLane, storeWebhookTargets, webhookRefOf, type JobPayload, type JobResult, type WebhookSpec } from '@zimage/shared';
import { Job } from 'bullmq';
import { newBatchId } from './prepare-job.js';
import { batchRetentionSeconds, type ProducerContext } from './producer-context.js';

export interface BatchOptions {
  batchId?: string;
  source?: string;
  /** Set when a tenant's API token created it: only that token (and operators) may read it. */
  tenant?: string;
  /** Called back with `batch.completed` (and, when set on each job, the jobs' events). */
  webhook?: WebhookSpec;
}

/** Creates the batch record; `total` is the number of jobs that will be added to it. */
export async function beginBatch(context: ProducerContext, batch: BatchOptions & { total: number }): Promise<string> {
  const batchId = batch.batchId ?? newBatchId();
  const key = batchKey(context.prefix, batchId);
  const created = await context.connection.hsetnx(key, 'total', String(batch.total));
  if (!created) throw new AppError('REQUEST_INVALID', `batchId: batch ${batchId} already exists`);
  if (batch.webhook) await storeWebhookTargets(context.connection, context.prefix, [batch.webhook]);
  // Where the batch's events start, in the stream's own clock: `events({ batchId })` reads from
  // here, whatever the producer's clock says.
  const streamFrom = await lastEventId(context.connection, context.prefix);
  const now = Date.now();
  const retention = batchRetentionSeconds(context);
  await context.connection
    .multi()
    .hset(key, {
      createdAt: new Date(now).toISOString(),
      source: batch.source ?? '',
      ...(batch.tenant ? { tenant: batch.tenant } : {}),
      streamFrom,
      succeeded: 0,
      failed: 0,
      expired: 0,
      cancelled: 0,
      // Read by the event script, which copies it onto the batch.completed stream entry.
      ...(batch.webhook ? { webhook: JSON.stringify(webhookRefOf(batch.webhook)) } : {}),
    })
    .expire(key, retention)
    // The index outlives nothing: entries older than a batch's retention go as new ones arrive.
    .zadd(batchIndexKey(context.prefix), now, batchId)
    .zremrangebyscore(batchIndexKey(context.prefix), '-inf', `(${now - retention * 1000}`)
    .exec();
  return batchId;
}

/** Counts one more job into an existing, unfinished batch, before the job can finish. */
export async function joinBatch(context: ProducerContext, batchId: string): Promise<void> {
  const completedAt = await context.connection.hget(batchKey(context.prefix, batchId), 'completedAt');
  if (completedAt) throw new AppError('REQUEST_INVALID', `batchId: batch ${batchId} completed at ${completedAt}; start a new batch`);
  if (!(await adjustBatchTotal(context.connection, batchId, 1, context.publish))) {
    throw new AppError('REQUEST_INVALID', `batchId: no batch ${batchId}; create batches with enqueueMany or zimage batch`);
  }
}

/** Corrects a batch's expected total (e.g. by the jobs that already existed); may complete it. */
export async function adjustTotal(context: ProducerContext, batchId: string, delta: number): Promise<void> {
  await adjustBatchTotal(context.connection, batchId, delta, context.publish);
}

/** Removes the batch's jobs that have not started (a job whose image is paid for stays). Returns how many. */
export async function abortBatch(context: ProducerContext, batchId: string, jobIds: readonly string[]): Promise<number> {
  let removed = 0;
  for (const jobId of jobIds) {
    // A job whose image is already paid for stays, to be stored (as a cancel leaves it).
    const job = await Job.fromId<JobPayload, JobResult>(context.queue, jobId);
    if (!job || job.data.checkpoint?.generated) continue;
    if (!(await context.queue.remove(jobId))) continue; // locked by a worker: it runs its course
    removed += 1;
    // Out of its tenant's lane too (if held there), so that it does not take a turn later.
    await leaveLane(context.connection, context.prefix, job.data.tenant, jobId);
  }
  await context.connection.hset(batchKey(context.prefix, batchId), 'aborted', new Date().toISOString());
  return removed;
}
