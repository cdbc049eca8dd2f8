/**
 * Adds prepared jobs to BullMQ: chunked `addBulk`, after the idempotency probe (which keys are
 * already in the queue) so a batch's total stays true, and with each job indexed in its batch.
 */
import { batchJobsKey, FAIR_HOLD_DELAY_MS, fairShareEnabled, GENERATE_JOB_NAME, holdInLanes, storeWebhookTargets, type JobPayload } from '@zimage/shared';
import type { JobsOptions } from 'bullmq';
import type { PreparedJob } from './prepare-job.js';
import { batchRetentionSeconds, jobHashKey, type ProducerContext } from './producer-context.js';

const ADD_CHUNK = 500;

export interface AddOutcome {
  added: string[];
  /** Jobs whose idempotency key was already in the queue: left as they were. */
  existing: string[];
}

/** `held`: fair share is on, so the job waits in its tenant's lane (`shared/src/fair-share/tenant-lanes.ts`). */
export function toBulkJob(context: ProducerContext, job: PreparedJob, held: boolean): { name: string; data: JobPayload; opts: JobsOptions } {
  const { attempts, backoff, removeOnComplete, removeOnFail } = context.jobOptions;
  // A literal, not `{ ...shared, jobId, priority }`: V8 builds a spread-then-extended object
  // slowly (in dictionary mode), and BullMQ copies and encodes these options for every job.
  const opts: JobsOptions = held
    ? { attempts, backoff, removeOnComplete, removeOnFail, jobId: job.jobId, priority: job.bullPriority, delay: FAIR_HOLD_DELAY_MS }
    : { attempts, backoff, removeOnComplete, removeOnFail, jobId: job.jobId, priority: job.bullPriority };
  return { name: GENERATE_JOB_NAME, data: job.payload, opts };
}

/**
 * Adds jobs to BullMQ as they are (BullMQ keeps an existing id's job), held in their lanes first
 * while fair share is on.
 */
export async function queueJobs(context: ProducerContext, jobs: readonly PreparedJob[]): Promise<void> {
  const held = await fairShareEnabled(context.connection, context.prefix);
  if (held) await holdInLanes(context.connection, context.prefix, jobs.map((job) => ({ jobId: job.jobId, tenant: job.payload.tenant, bullPriority: job.bullPriority })));
  if (jobs.length === 1 && jobs[0]) {
    const bulk = toBulkJob(context, jobs[0], held);
    await context.queue.add(bulk.name, bulk.data, bulk.opts);
  } else {
    await context.queue.addBulk(jobs.map((job) => toBulkJob(context, job, held)));
  }
}

export async function addPreparedJobs(context: ProducerContext, jobs: readonly PreparedJob[]): Promise<AddOutcome> {
  const added: string[] = [];
  const existing: string[] = [];
  for (let i = 0; i < jobs.length; i += ADD_CHUNK) {
    let chunk = jobs.slice(i, i + ADD_CHUNK);
    const idempotent = chunk.filter((job) => job.idempotent);
    if (idempotent.length > 0) {
      // BullMQ would silently keep the existing job; find those first so the batch's total stays true.
      const found = await existingJobIds(context, idempotent);
      for (const jobId of await releaseCancelled(context, [...found])) found.delete(jobId);
      existing.push(...found);
      chunk = chunk.filter((job) => !found.has(job.jobId));
    }
    if (chunk.length > 0) {
      await storeWebhookTargets(context.connection, context.prefix, chunk.flatMap((job) => (job.webhook ? [job.webhook] : [])));
      await indexBatchJobs(context, chunk);
      await queueJobs(context, chunk);
    }
    added.push(...chunk.map((job) => job.jobId));
  }
  return { added, existing };
}

async function existingJobIds(context: ProducerContext, jobs: readonly PreparedJob[]): Promise<Set<string>> {
  const pipeline = context.connection.pipeline();
  for (const job of jobs) pipeline.exists(jobHashKey(context, job.jobId));
  const results = (await pipeline.exec()) ?? [];
  const found = new Set<string>();
  jobs.forEach((job, n) => {
    if (results[n]?.[1] === 1) found.add(job.jobId);
  });
  return found;
}

/**
 * A job cancelled while it ran stays in the queue as failed (JOB_CANCELLED) until retention; its
 * idempotency key submitted again means "run it after all", not "return the cancelled job". Such
 * jobs are removed so the new request creates a new run of the same id. Returns the ids removed.
 */
export async function releaseCancelled(context: ProducerContext, jobIds: readonly string[]): Promise<string[]> {
  if (jobIds.length === 0) return [];
  const pipeline = context.connection.pipeline();
  for (const jobId of jobIds) pipeline.hget(jobHashKey(context, jobId), 'failedReason');
  const reasons = (await pipeline.exec()) ?? [];
  const released: string[] = [];
  for (const [n, jobId] of jobIds.entries()) {
    const reason = reasons[n]?.[1];
    if (typeof reason !== 'string' || !reason.startsWith('JOB_CANCELLED')) continue;
    if ((await context.queue.getJobState(jobId)) === 'failed' && (await context.queue.remove(jobId)) === 1) released.push(jobId);
  }
  return released;
}

/** Remembers which jobs belong to which batch (cancel, gallery); expires with the batch. */
async function indexBatchJobs(context: ProducerContext, jobs: readonly PreparedJob[]): Promise<void> {
  const byBatch = new Map<string, string[]>();
  for (const job of jobs) {
    const batchId = job.payload.batchId;
    if (!batchId) continue;
    const ids = byBatch.get(batchId);
    if (ids) ids.push(job.jobId);
    else byBatch.set(batchId, [job.jobId]);
  }
  if (byBatch.size === 0) return;
  const pipeline = context.connection.pipeline();
  for (const [batchId, ids] of byBatch) {
    const key = batchJobsKey(context.prefix, batchId);
    pipeline.sadd(key, ...ids).expire(key, batchRetentionSeconds(context));
  }
  await pipeline.exec();
}
