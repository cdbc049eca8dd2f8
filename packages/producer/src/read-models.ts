/** What callers read back: one job, one batch, a batch's results manifest, the queue's pause state. */
import { batchJobsKey, batchKey, batchResultsKey, cancelledJobKey, isHeldDelay, parkedJobsKey, pauseReasonKey, type JobPayload, type JobResult, type ManifestEntry } from '@zimage/shared';
import { Job } from 'bullmq';
import type { CancelledRecord } from './cancel-job.js';
import type { ProducerContext } from './producer-context.js';

export type JobState = 'waiting' | 'active' | 'delayed' | 'prioritized' | 'paused' | 'completed' | 'failed' | 'cancelled' | 'waiting-children' | 'unknown';

/** States a job does not leave (until retention removes it). */
export const TERMINAL_JOB_STATES: ReadonlySet<JobState> = new Set(['completed', 'failed', 'cancelled']);

export interface JobView {
  jobId: string;
  state: JobState;
  attempts: number;
  payload: JobPayload;
  result: JobResult | undefined;
  failedReason: string | undefined;
  createdAt: string;
  finishedAt: string | undefined;
}

/** A batch is running until every job has finished; `cancelling` once a cancel was asked for. */
export type BatchState = 'running' | 'cancelling' | 'completed';

export interface BatchStatus {
  batchId: string;
  state: BatchState;
  total: number;
  succeeded: number;
  failed: number;
  expired: number;
  cancelled: number;
  /** Failed jobs by error code (JOB_CANCELLED excluded: those count as cancelled). */
  failedByCode: Record<string, number>;
  pending: number;
  createdAt: string | undefined;
  completedAt: string | undefined;
  source: string | undefined;
  /** The tenant whose API token created it, if one did. */
  tenant: string | undefined;
  /** Of the pending jobs, those a worker holds now (`withRunning`). */
  running: number;
  /** Calls whose outcome is unknown (timeout or reset after sending): they may have been billed, US$. */
  maybeBilledUsd: number;
  /** Estimated spend of the batch's succeeded jobs so far (list prices), US$. */
  costUsd: number;
  /** Succeeded jobs served from the render cache (no upstream call). */
  cached: number;
  /** What those would have cost at list prices, US$. */
  savedUsd: number;
  cancelRequestedAt: string | undefined;
  /** When its first job failed (`batch.first_failure`). */
  firstFailureAt: string | undefined;
}

export interface PauseState {
  paused: boolean;
  /** Set when a worker paused the queue for a fleet-wide fault (account, storage, upstream outage). */
  reason: { code: string; message: string; action: string; at: string } | undefined;
  /** Paid images held for an operator (`zimage jobs parked`). */
  parkedJobs: number;
}

export async function readJob(context: ProducerContext, jobId: string): Promise<JobView | null> {
  // State first: the job's hash is written in the same step as its state changes, so reading it
  // second can only be newer (never "failed" without a failedReason).
  let state = (await context.queue.getJobState(jobId)) as JobState;
  const job = await Job.fromId<JobPayload, JobResult>(context.queue, jobId);
  if (!job) {
    const record = await context.connection.get(cancelledJobKey(context.prefix, jobId));
    if (!record) return null;
    const cancelled = JSON.parse(record) as CancelledRecord;
    return {
      jobId,
      state: 'cancelled',
      attempts: 0,
      payload: cancelled.payload,
      result: undefined,
      failedReason: 'JOB_CANCELLED: cancelled before it started; never sent upstream',
      createdAt: cancelled.createdAt,
      finishedAt: cancelled.cancelledAt,
    };
  }
  if (state === 'failed' && job.failedReason?.startsWith('JOB_CANCELLED')) state = 'cancelled';
  // Held in its tenant's lane (fair share): it waits for its turn like any waiting job.
  if (state === 'delayed' && isHeldDelay(job.delay)) state = 'waiting';
  return {
    jobId,
    state,
    attempts: job.attemptsStarted ?? job.attemptsMade,
    payload: job.data,
    result: job.returnvalue ?? undefined,
    failedReason: job.failedReason || undefined,
    createdAt: new Date(job.timestamp).toISOString(),
    finishedAt: job.finishedOn ? new Date(job.finishedOn).toISOString() : undefined,
  };
}

export async function readBatch(context: ProducerContext, batchId: string): Promise<BatchStatus | null> {
  const status = batchStatusOf(batchId, await context.connection.hgetall(batchKey(context.prefix, batchId)));
  return status ? ((await withRunning(context, [status]))[0] ?? status) : null;
}

/**
 * Fills in `running`: the batch's jobs a worker holds now, counted against BullMQ's active list
 * (never longer than the fleet's concurrency), so it is exact whatever retries and requeues did.
 */
export async function withRunning(context: ProducerContext, statuses: BatchStatus[]): Promise<BatchStatus[]> {
  const open = statuses.filter((s) => !s.completedAt);
  if (open.length === 0) return statuses;
  const active = await context.connection.lrange(context.queue.toKey('active'), 0, -1);
  if (active.length === 0) return statuses;
  const counts = await Promise.all(open.map(async (s) => (await context.connection.smismember(batchJobsKey(context.prefix, s.batchId), ...active)).filter((m) => m === 1).length));
  const running = new Map(open.map((s, i) => [s.batchId, counts[i] ?? 0]));
  return statuses.map((s) => ({ ...s, running: running.get(s.batchId) ?? 0 }));
}

/** A batch record's hash as callers see it; null when there is none (never made, or expired). */
export function batchStatusOf(batchId: string, hash: Record<string, string>): BatchStatus | null {
  if (!hash['total']) return null;
  const n = (field: string) => Number(hash[field] ?? 0);
  const total = n('total');
  const done = n('succeeded') + n('failed') + n('expired') + n('cancelled');
  const completedAt = hash['completedAt'] || undefined;
  const cancelRequestedAt = hash['cancelRequestedAt'] || undefined;
  return {
    batchId,
    state: completedAt ? 'completed' : cancelRequestedAt ? 'cancelling' : 'running',
    total,
    succeeded: n('succeeded'),
    failed: n('failed'),
    expired: n('expired'),
    cancelled: n('cancelled'),
    failedByCode: Object.fromEntries(Object.entries(hash).filter(([field]) => field.startsWith('failedCode:')).map(([field, count]) => [field.slice('failedCode:'.length), Number(count)])),
    pending: Math.max(0, total - done),
    running: 0,
    maybeBilledUsd: n('maybeMicroUsd') / 1e6,
    createdAt: hash['createdAt'] || undefined,
    completedAt,
    source: hash['source'] || undefined,
    tenant: hash['tenant'] || undefined,
    costUsd: n('costMicroUsd') / 1e6,
    cached: n('cached'),
    savedUsd: n('savedMicroUsd') / 1e6,
    cancelRequestedAt,
    firstFailureAt: hash['firstFailureAt'] || undefined,
  };
}

/** The batch's results manifest, one entry per terminal job, in file-line order. */
export async function readBatchResults(context: ProducerContext, batchId: string): Promise<ManifestEntry[]> {
  const entries: ManifestEntry[] = [];
  let cursor = '0';
  do {
    const [next, flat] = await context.connection.hscan(batchResultsKey(context.prefix, batchId), cursor, 'COUNT', 1000);
    cursor = next;
    for (let i = 1; i < flat.length; i += 2) entries.push(JSON.parse(flat[i] as string) as ManifestEntry);
  } while (cursor !== '0');
  return entries.sort((a, b) => (a.line ?? 0) - (b.line ?? 0));
}

export async function readPauseState(context: ProducerContext): Promise<PauseState> {
  const paused = await context.queue.isPaused();
  const reason = paused ? await context.connection.get(pauseReasonKey(context.prefix)) : null;
  const parkedJobs = await context.connection.hlen(parkedJobsKey(context.prefix));
  return { paused, reason: reason ? (JSON.parse(reason) as PauseState['reason']) : undefined, parkedJobs };
}
