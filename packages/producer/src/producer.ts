/**
 * The enqueue library: `createProducer(...)` with `enqueue`, `enqueueMany`, `getJob`, `getBatch`.
 *
 * Nothing is half-done: a request is fully validated (key template included) before anything
 * touches Redis, and `enqueueMany` validates every item before adding any. The Redis connection
 * fails fast when Redis is down instead of queueing commands in memory.
 */
import {
  AppError,
  batchJobsKey,
  batchKey,
  batchResultsKey,
  cancelChannel,
  cancelledJobKey,
  cancelRequestKey,
  createRedisConnection,
  ensureConsumerGroup,
  eventIdFor,
  publishJobEvent,
  WEBHOOK_CONSUMER_GROUP,
  GENERATE_QUEUE,
  pauseReasonKey,
  parkedJobsKey,
  waitForRedis,
  adjustBatchTotal,
  DEFAULT_PUBLISH_OPTIONS,
  storeWebhookTargets,
  webhookRefOf,
  WebhookUrlChecker,
  type FieldIssue,
  type Resolver,
  type WebhookSpec,
  type WebhookUrlPolicy,
  type StorageKeyLimits,
  type JobPayload,
  type JobResult,
  type ManifestEntry,
} from '@zimage/shared';
import { Job, Queue, type JobsOptions } from 'bullmq';
import type { Redis } from 'ioredis';
import { DuplicateFinder, newBatchId, prepareJob, type PrepareContext, type PreparedJob } from './prepare-job.js';

export interface ProducerOptions {
  redisUrl: string;
  prefix: string;
  /** Attempts per job for transient errors. @defaultValue 6 */
  maxAttempts?: number;
  /** How long finished jobs, idempotency keys and batch records are kept, hours. @defaultValue 168 */
  retentionHours?: number;
  /** Approximate bound of the event stream. @defaultValue 100000 */
  eventsMaxLen?: number;
  /** SSRF rules for webhook URLs (ZIMAGE_WEBHOOK_ALLOWED_HOSTS). @defaultValue no exceptions */
  webhookPolicy?: WebhookUrlPolicy;
  /** DNS resolver for the webhook URL check (tests). */
  resolve?: Resolver;
  /**
   * What the workers' store leaves for a key after its folder or S3 prefix:
   * `storageKeyLimits(parseStorageUrl(STORAGE_URL))`. Every key is checked against it before
   * anything is enqueued. @defaultValue only the rules every store shares (a key too long for
   * the prefix then fails in the worker, after the image was paid for)
   */
  keyLimits?: StorageKeyLimits;
}

export interface EnqueuedJob {
  jobId: string;
  key: string;
  /** False when an earlier job with the same idempotency key was returned instead. */
  created: boolean;
}

export interface ItemIssues {
  /** 0-based index in the array, or the file line for batch files. */
  index: number;
  issues: FieldIssue[];
}

export interface BatchStatus {
  batchId: string;
  total: number;
  succeeded: number;
  failed: number;
  expired: number;
  cancelled: number;
  pending: number;
  createdAt: string | undefined;
  completedAt: string | undefined;
  source: string | undefined;
  /** Estimated spend of the batch's succeeded jobs so far (list prices), US$. */
  costUsd: number;
  cancelRequestedAt: string | undefined;
}

export interface PauseState {
  paused: boolean;
  /** Set when a worker paused the queue for a fleet-wide fault (account, storage, upstream outage). */
  reason: { code: string; message: string; action: string; at: string } | undefined;
  /** Paid images held for an operator (`zimage jobs parked`). */
  parkedJobs: number;
}

export type JobState = 'waiting' | 'active' | 'delayed' | 'prioritized' | 'paused' | 'completed' | 'failed' | 'cancelled' | 'waiting-children' | 'unknown';

export interface CancelOutcome {
  jobId: string;
  /**
   * `cancelled`: done (it had not started); `cancelling`: it is running, the worker is aborting it
   * (should its image be paid for by then, it is stored); `storing`: its image is already paid
   * for, so it is not cancelled: it finishes storing and succeeds.
   */
  state: 'cancelled' | 'cancelling' | 'storing';
}

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

const ADD_CHUNK = 500;

export interface BatchOptions {
  batchId?: string;
  source?: string;
  /** Called back with `batch.completed` (and, when set on each job, the jobs' events). */
  webhook?: WebhookSpec;
}

export interface Producer {
  readonly queue: Queue<JobPayload, JobResult>;
  /** The `keyLimits` it was created with: `ingestBatchFile` checks each row's key against them. */
  readonly keyLimits: StorageKeyLimits | undefined;
  enqueue(request: unknown): Promise<EnqueuedJob>;
  enqueueMany(requests: readonly unknown[], options?: BatchOptions): Promise<{ batchId: string; jobs: EnqueuedJob[] }>;
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
  addPrepared(jobs: readonly PreparedJob[]): Promise<{ added: string[]; existing: string[] }>;
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
  cancelBatch(batchId: string): Promise<{ cancelled: number; cancelling: number; storing: number; finished: number }>;
  getBatch(batchId: string): Promise<BatchStatus | null>;
  /** Whether the queue is paused and, when a worker paused it for an account-wide error, why. */
  pauseState(): Promise<PauseState>;
  /** The batch's results manifest, one entry per terminal job, in file-line order. */
  batchResults(batchId: string): Promise<ManifestEntry[]>;
  close(): Promise<void>;
}

export async function createProducer(options: ProducerOptions): Promise<Producer> {
  const retentionSeconds = (options.retentionHours ?? 24 * 7) * 3600;
  const connection: Redis = createRedisConnection(options.redisUrl, 'producer');
  try {
    await waitForRedis(connection, options.redisUrl);
  } catch (error) {
    connection.disconnect(); // or ioredis keeps reconnecting and holds the process open
    throw error;
  }
  const queue = new Queue<JobPayload, JobResult>(GENERATE_QUEUE, { connection, prefix: options.prefix });
  // Connection errors surface as failed commands (REDIS_UNAVAILABLE); without a listener BullMQ
  // prints each reconnect attempt's error to stderr as raw text.
  queue.on('error', () => {});
  // The webhook dispatchers' consumer group exists from the first producer on, so no event
  // published before a dispatcher starts is missed.
  await ensureConsumerGroup(connection, options.prefix, WEBHOOK_CONSUMER_GROUP, '$');
  const publish = { prefix: options.prefix, maxLen: options.eventsMaxLen ?? DEFAULT_PUBLISH_OPTIONS.maxLen };
  const webhooks = new WebhookUrlChecker(options.webhookPolicy ?? { allowedHosts: [] }, options.resolve);

  async function refuseWebhook(webhook: WebhookSpec | undefined): Promise<void> {
    const problem = webhook ? await webhooks.problem(webhook.url) : undefined;
    if (problem) throw new AppError('WEBHOOK_URL_REFUSED', `Invalid job request: webhook.url: ${problem}`, { details: { issues: [{ field: 'webhook.url', message: problem }] } });
  }
  const attempts = options.maxAttempts ?? 6;
  const backoff = { type: 'zimage' };
  // Kept for the retention period so that status, results and idempotency keys keep working.
  const removeOnComplete = { age: retentionSeconds };
  const removeOnFail = { age: retentionSeconds };

  function toBulk(job: PreparedJob): { name: string; data: JobPayload; opts: JobsOptions } {
    // A literal, not `{ ...shared, jobId, priority }`: V8 builds a spread-then-extended object
    // slowly (in dictionary mode), and BullMQ copies and encodes these options for every job.
    const opts: JobsOptions = { attempts, backoff, removeOnComplete, removeOnFail, jobId: job.jobId, priority: job.bullPriority };
    return { name: 'generate', data: job.payload, opts };
  }

  async function enqueue(request: unknown): Promise<EnqueuedJob> {
    const prepared = prepareJob(request, { now: Date.now(), keyLimits: options.keyLimits });
    if (!prepared.ok) {
      throw new AppError('REQUEST_INVALID', `Invalid job request: ${prepared.issues.map((i) => `${i.field || '(request)'}: ${i.message}`).join('; ')}`, {
        details: { issues: prepared.issues },
      });
    }
    const { job } = prepared;
    await refuseWebhook(job.webhook);
    await storeWebhookTargets(connection, options.prefix, job.webhook ? [job.webhook] : []);
    const bulk = toBulk(job);
    if (job.payload.batchId) {
      // Joining an existing batch: count the job in before it can finish.
      await joinBatch(job.payload.batchId);
      try {
        const { existing } = await addPrepared([job]);
        if (existing.length > 0) await adjustTotal(job.payload.batchId, -1);
      } catch (error) {
        await adjustTotal(job.payload.batchId, -1).catch(() => {});
        throw error;
      }
    } else {
      if (job.idempotent) await releaseCancelled([job.jobId]);
      await queue.add(bulk.name, bulk.data, bulk.opts);
    }
    if (!job.idempotent) return { jobId: job.jobId, key: job.payload.key, created: true };
    // BullMQ ignores an add whose id exists; tell a repeat from a conflicting reuse of the key.
    const stored = await Job.fromId<JobPayload, JobResult>(queue, job.jobId);
    if (stored && stored.data.requestHash !== job.payload.requestHash) {
      throw new AppError('IDEMPOTENCY_CONFLICT', `Idempotency key already used for a different request (job ${job.jobId})`, {
        details: { jobId: job.jobId },
      });
    }
    const created = !stored || stored.data.createdAt === job.payload.createdAt;
    return { jobId: job.jobId, key: stored?.data.key ?? job.payload.key, created };
  }

  async function joinBatch(batchId: string): Promise<void> {
    const completedAt = await connection.hget(batchKey(options.prefix, batchId), 'completedAt');
    if (completedAt) throw new AppError('REQUEST_INVALID', `batchId: batch ${batchId} completed at ${completedAt}; start a new batch`);
    if (!(await adjustBatchTotal(connection, batchId, 1, { prefix: options.prefix, maxLen: publish.maxLen }))) {
      throw new AppError('REQUEST_INVALID', `batchId: no batch ${batchId}; create batches with enqueueMany or zimage batch`);
    }
  }

  async function adjustTotal(batchId: string, delta: number): Promise<void> {
    await adjustBatchTotal(connection, batchId, delta, publish);
  }

  async function beginBatch(batch: BatchOptions & { total: number }): Promise<string> {
    const batchId = batch.batchId ?? newBatchId();
    const key = batchKey(options.prefix, batchId);
    const created = await connection.hsetnx(key, 'total', String(batch.total));
    if (!created) throw new AppError('REQUEST_INVALID', `batchId: batch ${batchId} already exists`);
    if (batch.webhook) await storeWebhookTargets(connection, options.prefix, [batch.webhook]);
    await connection
      .multi()
      .hset(key, {
        createdAt: new Date().toISOString(),
        source: batch.source ?? '',
        succeeded: 0,
        failed: 0,
        expired: 0,
        cancelled: 0,
        // Read by the event script, which copies it onto the batch.completed stream entry.
        ...(batch.webhook ? { webhook: JSON.stringify(webhookRefOf(batch.webhook)) } : {}),
      })
      .expire(key, retentionSeconds + 7 * 24 * 3600)
      .exec();
    return batchId;
  }

  async function addPrepared(jobs: readonly PreparedJob[]): Promise<{ added: string[]; existing: string[] }> {
    const added: string[] = [];
    const existing: string[] = [];
    for (let i = 0; i < jobs.length; i += ADD_CHUNK) {
      let chunk = jobs.slice(i, i + ADD_CHUNK);
      const idempotent = chunk.filter((job) => job.idempotent);
      if (idempotent.length > 0) {
        // BullMQ would silently keep the existing job; find those first so the batch's total stays true.
        const pipeline = connection.pipeline();
        for (const job of idempotent) pipeline.exists(`${options.prefix}:${GENERATE_QUEUE}:${job.jobId}`);
        const found = new Set<string>();
        const results = (await pipeline.exec()) ?? [];
        idempotent.forEach((job, n) => {
          if (results[n]?.[1] === 1) found.add(job.jobId);
        });
        for (const jobId of await releaseCancelled([...found])) found.delete(jobId);
        existing.push(...found);
        chunk = chunk.filter((job) => !found.has(job.jobId));
      }
      if (chunk.length > 0) {
        await storeWebhookTargets(connection, options.prefix, chunk.flatMap((job) => (job.webhook ? [job.webhook] : [])));
        await indexBatchJobs(chunk);
        await queue.addBulk(chunk.map(toBulk));
      }
      added.push(...chunk.map((job) => job.jobId));
    }
    return { added, existing };
  }

  /**
   * A job cancelled while it ran stays in the queue as failed (JOB_CANCELLED) until retention; its
   * idempotency key submitted again means "run it after all", not "return the cancelled job". Such
   * jobs are removed so the new request creates a new run of the same id. Returns the ids removed.
   */
  async function releaseCancelled(jobIds: readonly string[]): Promise<string[]> {
    if (jobIds.length === 0) return [];
    const pipeline = connection.pipeline();
    for (const jobId of jobIds) pipeline.hget(`${options.prefix}:${GENERATE_QUEUE}:${jobId}`, 'failedReason');
    const reasons = (await pipeline.exec()) ?? [];
    const released: string[] = [];
    for (const [n, jobId] of jobIds.entries()) {
      const reason = reasons[n]?.[1];
      if (typeof reason !== 'string' || !reason.startsWith('JOB_CANCELLED')) continue;
      if ((await queue.getJobState(jobId)) === 'failed' && (await queue.remove(jobId)) === 1) released.push(jobId);
    }
    return released;
  }

  /** Remembers which jobs belong to which batch (cancel, gallery); expires with the batch. */
  async function indexBatchJobs(jobs: readonly PreparedJob[]): Promise<void> {
    const byBatch = new Map<string, string[]>();
    for (const job of jobs) {
      const batchId = job.payload.batchId;
      if (!batchId) continue;
      const ids = byBatch.get(batchId);
      if (ids) ids.push(job.jobId);
      else byBatch.set(batchId, [job.jobId]);
    }
    if (byBatch.size === 0) return;
    const pipeline = connection.pipeline();
    for (const [batchId, ids] of byBatch) {
      const key = batchJobsKey(options.prefix, batchId);
      pipeline.sadd(key, ...ids).expire(key, retentionSeconds + 7 * 24 * 3600);
    }
    await pipeline.exec();
  }

  async function cancelJob(jobId: string): Promise<CancelOutcome> {
    const state = await queue.getJobState(jobId);
    if (state === 'unknown') {
      if (await connection.exists(cancelledJobKey(options.prefix, jobId))) throw new AppError('JOB_NOT_CANCELLABLE', `job ${jobId} is already cancelled`);
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
    await connection.set(cancelRequestKey(options.prefix, jobId), String(job.timestamp), 'EX', retentionSeconds);
    if (state !== 'active') {
      // remove() refuses a job a worker has just locked: then it is active, and handled as such.
      const removed = await queue.remove(jobId).then((n) => n === 1, () => false);
      if (removed) {
        await recordCancelled(job);
        return { jobId, state: 'cancelled' };
      }
    }
    await connection.publish(cancelChannel(options.prefix), jobId);
    return { jobId, state: 'cancelling' };
  }

  /** A job removed before it ran: keep what GET needs, and count it in its batch, with its event. */
  async function recordCancelled(job: Job<JobPayload, JobResult>): Promise<void> {
    const jobId = String(job.id);
    const now = new Date().toISOString();
    await connection.set(
      cancelledJobKey(options.prefix, jobId),
      JSON.stringify({ payload: job.data, createdAt: new Date(job.timestamp).toISOString(), cancelledAt: now }),
      'EX',
      retentionSeconds,
    );
    const payload = job.data;
    await publishJobEvent(
      connection,
      {
        event: {
          id: eventIdFor('job.failed', jobId),
          version: 1,
          type: 'job.failed',
          timestamp: now,
          data: { jobId, batchId: payload.batchId, metadata: payload.metadata ?? {}, error: { code: 'JOB_CANCELLED', message: 'cancelled before it started; never sent upstream' }, attempts: 0 },
        },
        outcome: 'cancelled',
        manifest: { jobId, line: payload.line, rowKey: payload.rowKey, status: 'cancelled', errorCode: 'JOB_CANCELLED' },
        webhook: payload.webhook,
        incarnation: job.timestamp,
      },
      { ...DEFAULT_PUBLISH_OPTIONS, ...publish },
    );
  }

  async function cancelBatch(batchId: string) {
    if (!(await connection.exists(batchKey(options.prefix, batchId)))) throw new AppError('JOB_NOT_FOUND', `no batch ${batchId}`);
    await connection.hset(batchKey(options.prefix, batchId), 'cancelRequestedAt', new Date().toISOString());
    const outcome = { cancelled: 0, cancelling: 0, storing: 0, finished: 0 };
    let cursor = '0';
    do {
      const [next, ids] = await connection.sscan(batchJobsKey(options.prefix, batchId), cursor, 'COUNT', 500);
      cursor = next;
      for (const id of ids) {
        try {
          const result = await cancelJob(id);
          outcome[result.state] += 1;
        } catch (error) {
          if (error instanceof AppError && (error.code === 'JOB_NOT_CANCELLABLE' || error.code === 'JOB_NOT_FOUND')) outcome.finished += 1;
          else throw error;
        }
      }
    } while (cursor !== '0');
    return outcome;
  }

  async function enqueueMany(requests: readonly unknown[], batchOptions: BatchOptions = {}) {
    const now = Date.now();
    const batchId = batchOptions.batchId ?? newBatchId();
    const prepared: PreparedJob[] = [];
    const invalid: ItemIssues[] = [];
    const duplicates = new DuplicateFinder();
    requests.forEach((request, index) => {
      const context: PrepareContext = { now, batchId, line: index + 1, keyLimits: options.keyLimits };
      const outcome = prepareJob(request, context);
      const issues = outcome.ok ? duplicates.check(outcome.job, index) : outcome.issues;
      if (outcome.ok && issues.length === 0) prepared.push(outcome.job);
      else invalid.push({ index, issues });
    });
    for (const job of prepared) {
      const problem = job.webhook ? await webhooks.problem(job.webhook.url) : undefined;
      if (problem) invalid.push({ index: (job.payload.line ?? 1) - 1, issues: [{ field: 'webhook.url', message: problem }] });
    }
    if (batchOptions.webhook) {
      const problem = await webhooks.problem(batchOptions.webhook.url);
      if (problem) throw new AppError('WEBHOOK_URL_REFUSED', `Batch webhook.url: ${problem}`);
    }
    if (invalid.length > 0) {
      invalid.sort((a, b) => a.index - b.index);
      throw new AppError('BATCH_INVALID', `${invalid.length} of ${requests.length} items are invalid; nothing was enqueued`, {
        details: { items: invalid },
      });
    }
    await beginBatch({ ...batchOptions, batchId, total: prepared.length });
    const { existing } = await addPrepared(prepared);
    if (existing.length > 0) await adjustTotal(batchId, -existing.length);
    const old = new Set(existing);
    return { batchId, jobs: prepared.map((job) => ({ jobId: job.jobId, key: job.payload.key, created: !old.has(job.jobId) })) };
  }

  async function abortBatch(batchId: string, jobIds: readonly string[]): Promise<number> {
    let removed = 0;
    for (const jobId of jobIds) {
      // A job whose image is already paid for stays, to be stored (as a cancel leaves it).
      const job = await Job.fromId<JobPayload, JobResult>(queue, jobId);
      if (!job || job.data.checkpoint?.generated) continue;
      removed += (await queue.remove(jobId)) ? 1 : 0;
    }
    await connection.hset(batchKey(options.prefix, batchId), 'aborted', new Date().toISOString());
    return removed;
  }

  async function getJob(jobId: string): Promise<JobView | null> {
    // State first: the job's hash is written in the same step as its state changes, so reading it
    // second can only be newer (never "failed" without a failedReason).
    let state = (await queue.getJobState(jobId)) as JobState;
    const job = await Job.fromId<JobPayload, JobResult>(queue, jobId);
    if (!job) {
      const record = await connection.get(cancelledJobKey(options.prefix, jobId));
      if (!record) return null;
      const cancelled = JSON.parse(record) as { payload: JobPayload; createdAt: string; cancelledAt: string };
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

  async function getBatch(batchId: string): Promise<BatchStatus | null> {
    const hash = await connection.hgetall(batchKey(options.prefix, batchId));
    if (!hash['total']) return null;
    const n = (field: string) => Number(hash[field] ?? 0);
    const total = n('total');
    const done = n('succeeded') + n('failed') + n('expired') + n('cancelled');
    return {
      batchId,
      total,
      succeeded: n('succeeded'),
      failed: n('failed'),
      expired: n('expired'),
      cancelled: n('cancelled'),
      pending: Math.max(0, total - done),
      createdAt: hash['createdAt'] || undefined,
      completedAt: hash['completedAt'] || undefined,
      source: hash['source'] || undefined,
      costUsd: n('costMicroUsd') / 1e6,
      cancelRequestedAt: hash['cancelRequestedAt'] || undefined,
    };
  }

  async function batchResults(batchId: string): Promise<ManifestEntry[]> {
    const entries: ManifestEntry[] = [];
    let cursor = '0';
    do {
      const [next, flat] = await connection.hscan(batchResultsKey(options.prefix, batchId), cursor, 'COUNT', 1000);
      cursor = next;
      for (let i = 1; i < flat.length; i += 2) entries.push(JSON.parse(flat[i] as string) as ManifestEntry);
    } while (cursor !== '0');
    return entries.sort((a, b) => (a.line ?? 0) - (b.line ?? 0));
  }

  async function pauseState(): Promise<PauseState> {
    const paused = await queue.isPaused();
    const reason = paused ? await connection.get(pauseReasonKey(options.prefix)) : null;
    const parkedJobs = await connection.hlen(parkedJobsKey(options.prefix));
    return { paused, reason: reason ? (JSON.parse(reason) as PauseState['reason']) : undefined, parkedJobs };
  }

  let closing: Promise<void> | undefined;
  return {
    pauseState,
    queue,
    keyLimits: options.keyLimits,
    enqueue,
    enqueueMany,
    beginBatch,
    addPrepared,
    abortBatch,
    adjustBatchTotal: adjustTotal,
    getJob,
    cancelJob,
    cancelBatch,
    getBatch,
    batchResults,
    checkWebhook: (url) => webhooks.problem(url),
    close() {
      closing ??= (async () => {
        await queue.close();
        await connection.quit().catch(() => {});
      })();
      return closing;
    },
  };
}
