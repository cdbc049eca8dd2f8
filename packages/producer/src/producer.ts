/**
 * The enqueue library: `createProducer(...)`. Each concept lives in its own file over one small
 * context (`producer-context.ts`); this file only composes them into the public interface.
 *
 * Nothing is half-done: a request is fully validated (key template included) before anything
 * touches Redis, and `enqueueMany` validates every item before adding any. The Redis connection
 * fails fast when Redis is down instead of queueing commands in memory.
 */
import { createRedisConnection, type BudgetInput, type JobPayload, type JobRequestInput, type JobResult, type ManifestEntry, type StorageKeyLimits } from '@zimage/shared';
import type { Queue } from 'bullmq';
import { addPreparedJobs, type AddOutcome } from './add-jobs.js';
import { abortBatch, adjustTotal, beginBatch, type BatchOptions } from './batch-record.js';
import { bulkCancel, type BulkCancelFilter, type BulkCancelOutcome } from './bulk-cancel.js';
import { getBudget, listBudgets, removeBudget, setBudget, type BudgetView } from './budgets.js';
import { readQuota, setTenantWeight, type QuotaOverview } from './quota-overview.js';
import { bulkRetry, type BulkRetryFilter, type BulkRetryOutcome } from './bulk-retry.js';
import { cancelBatch, cancelJob, type BatchCancelOutcome, type CancelOutcome } from './cancel-job.js';
import { enqueueBatch } from './enqueue-batch.js';
import { enqueueJob, type EnqueuedJob } from './enqueue-job.js';
import { eventFeed, type EventFeedOptions, type FeedEvent } from './event-feed.js';
import { EventTail } from './event-tail.js';
import { listBatches, type BatchPage, type ListBatchesOptions } from './list-batches.js';
import { listJobs, type JobPage, type ListJobsOptions } from './list-jobs.js';
import type { PreparedJob } from './prepare-job.js';
import { openProducerContext, type ProducerOptions } from './producer-context.js';
import { readBatch, readBatchResults, readJob, readPauseState, type BatchStatus, type JobView, type PauseState } from './read-models.js';
import { waitForBatch, waitForJob, type WaitOptions } from './wait-for.js';

export interface Producer {
  readonly queue: Queue<JobPayload, JobResult>;
  /** The `keyLimits` it was created with: `ingestBatchFile` checks each row's key against them. */
  readonly keyLimits: StorageKeyLimits | undefined;
  /**
   * Enqueues one job. Typed for TypeScript callers (a misspelt field does not compile) and
   * validated at run time for everyone else: REQUEST_INVALID names each field and its rule.
   */
  /** `tenant`: enqueue as a tenant's API token does — the job is the tenant's, under its own key prefix, cache namespace and idempotency keys. */
  enqueue(request: JobRequestInput, options?: { tenant?: string | undefined }): Promise<EnqueuedJob>;
  /** Enqueues a batch: every item is validated before any is added (BATCH_INVALID lists them all). */
  enqueueMany(requests: readonly JobRequestInput[], options?: BatchOptions): Promise<{ batchId: string; jobs: EnqueuedJob[] }>;
  /**
   * Resolves with the job once it has succeeded, failed or been cancelled (look at `state`).
   * Rejects with WAIT_TIMEOUT after `timeoutMs` (default 10 minutes), with JOB_NOT_FOUND for an
   * unknown id, or with the signal's reason on abort.
   */
  waitForJob(jobId: string, options?: WaitOptions): Promise<JobView>;
  /** Resolves with the batch's counts once all its jobs have finished; rejects as `waitForJob`. */
  waitForBatch(batchId: string, options?: WaitOptions): Promise<BatchStatus>;
  /**
   * The event stream as an async iterator: `for await (const { event } of producer.events({ batchId }))`.
   * Ends after the batch's `batch.completed` (or the job's terminal event); see EventFeedOptions.
   */
  events(options?: EventFeedOptions): AsyncGenerator<FeedEvent, void, undefined>;
  /**
   * Creates the batch record; `total` is the number of jobs that will be added to it. A `webhook`
   * receives the batch's `batch.completed` (check its URL with `checkWebhook` first).
   */
  beginBatch(options: BatchOptions & { total: number }): Promise<string>;
  /**
   * The SSRF check of a webhook URL, as enqueue does it (DNS answers cached for a minute). Returns
   * the problem, or undefined when the URL may be called.
   */
  checkWebhook(url: string): Promise<string | undefined>;
  /**
   * Adds already-prepared jobs (chunked `addBulk`). Jobs whose idempotency key is already in the
   * queue are left as they are and counted in `existing`.
   */
  addPrepared(jobs: readonly PreparedJob[]): Promise<AddOutcome>;
  /** Corrects a batch's expected total (e.g. by the jobs that already existed). */
  adjustBatchTotal(batchId: string, delta: number): Promise<void>;
  /** Removes the batch's jobs that have not started, e.g. after a failed ingest (a job whose image is paid for stays). Returns how many. */
  abortBatch(batchId: string, jobIds: readonly string[]): Promise<number>;
  getJob(jobId: string): Promise<JobView | null>;
  /**
   * Cancels a job: one that has not started is removed and never runs; an active one has its
   * upstream request aborted by the worker holding it. Either way it ends counted as `cancelled`
   * in its batch, with a `job.failed` event (code JOB_CANCELLED). Throws JOB_NOT_FOUND, or
   * JOB_NOT_CANCELLABLE when it has already finished.
   */
  cancelJob(jobId: string): Promise<CancelOutcome>;
  /** Cancels every job of the batch that has not finished. */
  cancelBatch(batchId: string): Promise<BatchCancelOutcome>;
  /**
   * Cancels a batch's unfinished jobs matching a state and creation-time filter (each as
   * `cancelJob` does); with `dryRun`, only counts them (`matched`).
   */
  cancelJobs(filter: BulkCancelFilter, options?: { dryRun?: boolean }): Promise<BulkCancelOutcome>;
  /**
   * Retries a batch's failed jobs matching an error code and creation-time filter, with their
   * checkpoints (no paid image is paid again) and fresh attempts; the batch counts them as pending
   * again. With `dryRun`, only counts them (`matched`, `byCode`). Cancelled and expired jobs are not retried.
   */
  retryJobs(filter: BulkRetryFilter, options?: { dryRun?: boolean }): Promise<BulkRetryOutcome>;
  getBatch(batchId: string): Promise<BatchStatus | null>;
  /** Every budget with its usage in the current period and the jobs parked on it. */
  listBudgets(): Promise<BudgetView[]>;
  getBudget(id: string): Promise<BudgetView | null>;
  /** Creates or replaces a budget (REQUEST_INVALID names each bad field); wakes the jobs parked on it. */
  setBudget(budget: BudgetInput): Promise<BudgetView & { woken: number }>;
  /** Removes a budget (BUDGET_NOT_FOUND); wakes the jobs parked on it. */
  removeBudget(id: string): Promise<{ woken: number }>;
  /** Per account the governor's pace, ceiling and throttles; fair share's lanes and shares; budgets with usage. */
  quota(): Promise<QuotaOverview>;
  /** Sets a tenant's fair-share weight (whole number 1–1000; 1 is the default). */
  setTenantWeight(tenant: string, weight: number): Promise<{ tenant: string; weight: number }>;
  /** Batches newest first, by state and creation time, a page at a time (`nextCursor`). */
  listBatches(options?: ListBatchesOptions): Promise<BatchPage>;
  /** A batch's jobs (optionally in one state), or the queue's jobs in one state, a page at a time. */
  listJobs(options: ListJobsOptions): Promise<JobPage>;
  /** Whether the queue is paused and, when a worker paused it for an account-wide error, why. */
  pauseState(): Promise<PauseState>;
  /** The batch's results manifest, one entry per terminal job, in file-line order. */
  batchResults(batchId: string): Promise<ManifestEntry[]>;
  /** Closes the connections; waits in progress reject. */
  close(): Promise<void>;
}

export async function createProducer(options: ProducerOptions): Promise<Producer> {
  const context = await openProducerContext(options);
  // One blocking reader serves every waitForJob/waitForBatch, opened with the first wait.
  const tail = new EventTail(() => createRedisConnection(options.redisUrl, 'producer', { lazyConnect: false, enableOfflineQueue: true }), options.prefix);
  let closing: Promise<void> | undefined;
  return {
    queue: context.queue,
    keyLimits: context.keyLimits,
    enqueue: (request, options) => enqueueJob(context, request, options),
    enqueueMany: (requests, batchOptions) => enqueueBatch(context, requests, batchOptions),
    waitForJob: (jobId, waitOptions) => waitForJob(context, tail, jobId, waitOptions),
    waitForBatch: (batchId, waitOptions) => waitForBatch(context, tail, batchId, waitOptions),
    events: (feedOptions) => eventFeed(context, feedOptions),
    beginBatch: (batch) => beginBatch(context, batch),
    checkWebhook: (url) => context.webhooks.problem(url),
    addPrepared: (jobs) => addPreparedJobs(context, jobs),
    adjustBatchTotal: (batchId, delta) => adjustTotal(context, batchId, delta),
    abortBatch: (batchId, jobIds) => abortBatch(context, batchId, jobIds),
    getJob: (jobId) => readJob(context, jobId),
    cancelJob: (jobId) => cancelJob(context, jobId),
    cancelBatch: (batchId) => cancelBatch(context, batchId),
    cancelJobs: (filter, bulkOptions) => bulkCancel(context, filter, bulkOptions),
    retryJobs: (filter, bulkOptions) => bulkRetry(context, filter, bulkOptions),
    getBatch: (batchId) => readBatch(context, batchId),
    listBudgets: () => listBudgets(context),
    getBudget: (id) => getBudget(context, id),
    quota: () => readQuota(context),
    setTenantWeight: (tenant, weight) => setTenantWeight(context, tenant, weight),
    setBudget: (budget) => setBudget(context, budget),
    removeBudget: (id) => removeBudget(context, id),
    listBatches: (listOptions) => listBatches(context, listOptions),
    listJobs: (listOptions) => listJobs(context, listOptions),
    pauseState: () => readPauseState(context),
    batchResults: (batchId) => readBatchResults(context, batchId),
    close() {
      closing ??= (async () => {
        tail.close();
        await context.queue.close();
        await context.connection.quit().catch(() => {});
      })();
      return closing;
    },
  };
}
