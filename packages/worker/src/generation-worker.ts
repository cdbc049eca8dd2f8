/**
 * Wires the processor into a BullMQ worker: connections, pacing, the backoff strategy, the fleet's
 * stop switch (queue pause, storage health, the upstream circuit breaker, and the supervisor that
 * resumes what heals by itself), and an idempotent, time-boxed `close()` for graceful shutdown.
 */
import { BudgetGate } from './budget-gate.js';
import {
  AppError,
  cancelChannel,
  createOutboundAgent,
  createRedisConnection,
  DEFAULT_PUBLISH_OPTIONS,
  GENERATE_QUEUE,
  isAppError,
  jobPayloadSchema,
  metricsGovernorKey,
  toAppError,
  waitForRedis,
  type Budget,
  type JobPayload,
  type JobResult,
  type AccountConfig,
  type Logger,
  type Storage,
  type TenantWeights,
  writeFairShareEnabled,
  writeTenantWeights,
} from '@zimage/shared';
import { Queue, UnrecoverableError, Worker } from 'bullmq';
import { BACKOFF_TYPE, backoffDelay, RETRY_BACKOFF, type BackoffPolicy } from './backoff.js';
import { createDashscopeClient } from './dashscope-client.js';
import { createGovernor, type Governor } from './governor/governor.js';
import type { PaceConfig } from './governor/pace.js';
import { imageHostPolicy } from './image-hosts.js';
import type { GenerationJob } from './generation-job.js';
import { publishFailed } from './job-events.js';
import { createCircuitBreaker, type CircuitBreakerConfig } from './circuit-breaker.js';
import { startPauseSupervisor } from './pause-supervisor.js';
import { CANCEL_REASON, createProcessor } from './process-job.js';
import { createQueuePause } from './queue-pause.js';
import { createStorageHealth, type StorageHealthConfig } from './storage-health.js';
import { startTenantAdmission } from './fair-share/tenant-admission.js';

export interface GenerationWorkerOptions {
  redisUrl: string;
  prefix: string;
  logger: Logger;
  /** The DashScope accounts to use, each with its own fleet-wide pace. */
  accounts: readonly AccountConfig[];
  storage: Storage;
  /** Most jobs this process runs at once (the fleet-wide number follows Little's law). */
  concurrency: number;
  imageHosts?: readonly string[] | undefined;
  maxImageBytes: number;
  requestTimeoutMs: number;
  connectTimeoutMs: number;
  /**
   * How long `close()` waits for in-flight jobs, ms. Past it, `close()` resolves with `timedOut`
   * and the process should exit: unfinished jobs are recovered by another worker after their lock
   * expires (a call cut off mid-flight may have been billed; keep this above the request timeout).
   */
  shutdownTimeoutMs: number;
  /** Cap on the event stream's length. @defaultValue 100000 */
  eventsMaxLen?: number;
  /** Generations allowed after the first because of expired URLs. @defaultValue 2 */
  maxRegenerations?: number;
  /** Budgets created or replaced (by id) at start-up (ZIMAGE_BUDGETS); others, set through the API, stay. */
  budgets?: readonly Budget[];
  /** Backoff for transient errors. @defaultValue RETRY_BACKOFF (1 s doubling to 60 s, 50% jitter) */
  retryBackoff?: BackoffPolicy;
  /** Overrides of the governor's pacing constants (tests, bench). */
  pace?: Partial<PaceConfig>;
  /** Backoff between retries of a paid image's download and store. @defaultValue RETRY_BACKOFF */
  postGenerationBackoff?: BackoffPolicy;
  /** Overrides of the upstream circuit breaker's settings (tests). */
  circuitBreaker?: Partial<CircuitBreakerConfig>;
  /** Overrides of the storage-health settings (tests). */
  storageHealth?: Partial<StorageHealthConfig>;
  /** How often a paused fleet checks whether its pause has healed (storage probe, breaker cool-down), ms. @defaultValue 5000 */
  pauseSupervisorIntervalMs?: number;
  /** How often the governor's state is logged, ms; 0 for never. @defaultValue 30000 */
  governorLogIntervalMs?: number;
  /** Keep BullMQ's global concurrency at what Little's law says the accounts need. @defaultValue true */
  adaptiveConcurrency?: boolean;
  /** How long a job's lock lasts without renewal, ms: a dead worker's jobs count as stalled after it (tests). @defaultValue 30000 (BullMQ's) */
  lockDurationMs?: number;
  /** How often this worker looks for stalled jobs, ms (tests). @defaultValue 30000 (BullMQ's) */
  stalledIntervalMs?: number;
  /** Stalls a job survives before BullMQ fails it (reported as JOB_STALLED). @defaultValue 1 (BullMQ's) */
  maxStalledCount?: number;
  /**
   * Fair share between tenants (ZIMAGE_FAIR_SHARE): written to Redis at start-up, where producers
   * read it; unset leaves what is there. Every worker admits held jobs either way.
   */
  fairShare?: boolean;
  /** Tenant weights set at start-up (ZIMAGE_TENANT_WEIGHTS); others, set through the API, stay. */
  tenantWeights?: TenantWeights;
  /** How often held jobs are admitted, ms (tests). @defaultValue 100 */
  fairShareIntervalMs?: number;
}

export interface GenerationWorker {
  readonly worker: Worker<JobPayload, JobResult>;
  readonly queue: Queue<JobPayload, JobResult>;
  /** Pace, utilisation and throttle ratio per account. */
  readonly governor: Governor;
  /**
   * Stops taking jobs, waits for in-flight ones, closes everything, all by `deadline` (epoch ms;
   * default: now + the shutdown timeout). What is not done by then is abandoned and its Redis
   * connections are disconnected: `timedOut` is then true.
   */
  close(options?: { deadline?: number }): Promise<{ timedOut: boolean }>;
}


/** The fewest held jobs admitted to wait in BullMQ, whatever the pace. */
const MIN_ADMISSION_WINDOW = 8;

export async function startGenerationWorker(options: GenerationWorkerOptions): Promise<GenerationWorker> {
  const logger = options.logger.child({ component: 'worker' });
  const redis = createRedisConnection(options.redisUrl, 'worker');
  const queueConnection = createRedisConnection(options.redisUrl, 'worker');
  const workerConnection = createRedisConnection(options.redisUrl, 'worker');
  try {
    // Fail fast at start-up with an error naming REDIS_URL; outages after that are waited out.
    await waitForRedis(redis, options.redisUrl, 10_000);
  } catch (error) {
    for (const connection of [redis, queueConnection, workerConnection]) connection.disconnect();
    throw error;
  }
  const dispatcher = createOutboundAgent({ connectTimeoutMs: options.connectTimeoutMs, connections: 64 });
  const clients = new Map(
    options.accounts.map((account) => [
      account.id,
      createDashscopeClient({
        baseUrl: account.baseUrl,
        apiKey: account.apiKey,
        connectTimeoutMs: options.connectTimeoutMs,
        requestTimeoutMs: options.requestTimeoutMs,
        dispatcher,
      }),
    ]),
  );
  const governor = createGovernor({
    redis,
    prefix: options.prefix,
    accounts: options.accounts,
    logger,
    // A call never reported (its worker died) stops counting as in flight once it cannot still be
    // running: after the longest request timeout (prompt extension doubles it), plus a margin.
    pace: { leaseTtlMs: options.requestTimeoutMs * 2 + 30_000, ...options.pace },
  });
  const queue = new Queue<JobPayload, JobResult>(GENERATE_QUEUE, { connection: queueConnection, prefix: options.prefix });
  // The Worker's 'error' handler logs connection trouble once per event; this queue's copies of
  // the same errors would otherwise be printed raw to stderr by BullMQ.
  queue.on('error', () => {});
  const publish = { ...DEFAULT_PUBLISH_OPTIONS, prefix: options.prefix, maxLen: options.eventsMaxLen ?? DEFAULT_PUBLISH_OPTIONS.maxLen };

  const pause = createQueuePause({ queue, redis, prefix: options.prefix, logger });
  const breaker = createCircuitBreaker({ redis, prefix: options.prefix, ...(options.circuitBreaker ? { config: options.circuitBreaker } : {}) });
  const budgets = new BudgetGate({ redis, publish, logger });
  for (const budget of options.budgets ?? []) await budgets.store.set(budget);
  if (options.fairShare !== undefined) await writeFairShareEnabled(redis, options.prefix, options.fairShare);
  if (options.tenantWeights) await writeTenantWeights(redis, options.prefix, options.tenantWeights);
  const storageHealth = createStorageHealth({ redis, prefix: options.prefix, pause, logger, ...(options.storageHealth ? { config: options.storageHealth } : {}) });

  const processor = createProcessor({
    governor,
    clients,
    storage: options.storage,
    redis,
    logger,
    download: {
      dispatcher,
      policy: imageHostPolicy(options.imageHosts, options.accounts.map((a) => a.baseUrl)),
      maxBytes: options.maxImageBytes,
      timeoutMs: options.requestTimeoutMs,
    },
    publish,
    pause,
    breaker,
    storageHealth,
    budgets,
    ...(options.maxRegenerations === undefined ? {} : { maxRegenerations: options.maxRegenerations }),
    ...(options.postGenerationBackoff === undefined ? {} : { postGenerationBackoff: options.postGenerationBackoff }),
  });

  const worker = new Worker<JobPayload, JobResult>(GENERATE_QUEUE, processor, {
    connection: workerConnection,
    prefix: options.prefix,
    concurrency: options.concurrency,
    ...(options.lockDurationMs === undefined ? {} : { lockDuration: options.lockDurationMs }),
    ...(options.stalledIntervalMs === undefined ? {} : { stalledInterval: options.stalledIntervalMs }),
    ...(options.maxStalledCount === undefined ? {} : { maxStalledCount: options.maxStalledCount }),
    settings: {
      backoffStrategy: (attemptsMade: number, type?: string, err?: Error) => {
        if (type !== BACKOFF_TYPE) return -1;
        const retryAfterMs = (err as (Error & { retryAfterMs?: number }) | undefined)?.retryAfterMs;
        return backoffDelay(attemptsMade, options.retryBackoff ?? RETRY_BACKOFF, retryAfterMs);
      },
    },
  });

  worker.on('error', (error) => logger.error({ err: error }, 'Worker error'));
  // Fallback for failures that never went through the processor's handler (a job that stalled
  // more than maxStalledCount times, failed by BullMQ when a worker next takes it): the same
  // job.failed as any other failure, so the job's webhook and its manifest row are not lost.
  // Publishing is idempotent, so jobs the processor already reported are not reported twice.
  worker.on('failed', (job: GenerationJob | undefined, err: Error) => {
    if (!job) return;
    void (async () => {
      if (!(await job.isFailed())) return;
      const error = failedJobError(err);
      if (error.code === 'JOB_EXPIRED') return; // reported as job.expired, not job.failed
      const parsed = jobPayloadSchema.safeParse(job.data);
      // A paid image is never given up, not even by BullMQ's stall limit or a failure outside the
      // processor's own handling (its last attempt's event could not be published): the job goes
      // back to the queue and resumes from its checkpoint. Only a link that expired more often
      // than allowed ends a paid job as failed, by the processor's own decision. (A worker that
      // crashes on the job each time shows as this line, every stalled interval, in the logs.)
      if (error.code !== 'IMAGE_URL_EXPIRED' && parsed.success && parsed.data.checkpoint?.generated) {
        await job.retry('failed');
        logger.error({ jobId: job.id, code: error.code, requestId: parsed.data.checkpoint.generated.requestId }, `A job holding a paid image failed (${error.code}); back to the queue to be stored, not failed`);
        return;
      }
      await publishFailed({ redis, publish }, job, parsed.success ? parsed.data : undefined, error);
    })().catch((error: unknown) => logger.error({ err: error, jobId: job.id }, 'Could not publish job.failed'));
  });

  await worker.waitUntilReady();

  const supervisor = startPauseSupervisor({
    pause,
    storage: options.storage,
    breaker,
    accountIds: options.accounts.map((a) => a.id),
    logger,
    ...(options.pauseSupervisorIntervalMs === undefined ? {} : { intervalMs: options.pauseSupervisorIntervalMs }),
  });

  // Little's law: keep as many jobs active fleet-wide as the accounts can serve, so waiting jobs
  // stay in the queue, in priority order, instead of holding slots while they wait for the pace.
  const timers: NodeJS.Timeout[] = [];
  if (options.adaptiveConcurrency !== false) {
    let applied = 0;
    const adjust = async () => {
      const wanted = await governor.suggestedConcurrency();
      if (wanted !== applied) {
        await queue.setGlobalConcurrency(wanted);
        applied = wanted;
      }
    };
    await adjust().catch((error: unknown) => logger.warn({ err: error }, 'Could not set global concurrency'));
    timers.push(setInterval(() => void adjust().catch((error: unknown) => logger.warn({ err: error }, 'Could not set global concurrency')), 2_000));
  }
  // Held jobs enter BullMQ's waiting set a window at a time: about a second of the accounts'
  // pace, so the fleet never runs dry between rounds, and a tenant arriving late waits about a
  // second for its first turn, not behind a backlog.
  const admissionWindow = Math.max(MIN_ADMISSION_WINDOW, Math.ceil(options.accounts.reduce((sum, a) => sum + a.rpm, 0) / 60));
  const admission = startTenantAdmission({
    redis,
    queue,
    prefix: options.prefix,
    logger,
    window: () => admissionWindow,
    ...(options.fairShareIntervalMs === undefined ? {} : { intervalMs: options.fairShareIntervalMs }),
  });
  const logEvery = options.governorLogIntervalMs ?? 30_000;
  if (logEvery > 0) {
    timers.push(
      setInterval(() => {
        void governor
          .snapshot()
          .then((accounts) => {
            const text = accounts
              .map((a) => `${a.id} ${a.rpm.toFixed(0)} rpm (target ${a.targetRpm.toFixed(0)}, used ${(a.utilisation * 100).toFixed(0)}%, throttled ${(a.throttleRatio * 100).toFixed(1)}%${a.disabledReason ? ', DISABLED' : ''})`)
              .join('; ');
            logger.info({ accounts }, `Governor: ${text}`);
          })
          .catch(() => {});
      }, logEvery),
    );
  }
  // The governor's view, shared through Redis so that the API's /metrics can show it.
  const shareSnapshot = () =>
    governor
      .snapshot()
      .then(async (accounts) => {
        if (accounts.length === 0) return;
        const at = new Date().toISOString();
        await redis.hset(metricsGovernorKey(options.prefix), Object.fromEntries(accounts.map((a) => [a.id, JSON.stringify({ ...a, at })])));
      })
      .catch(() => {});
  timers.push(setInterval(() => void shareSnapshot(), 10_000));
  void shareSnapshot();
  for (const timer of timers) timer.unref();

  // Cancel requests for active jobs arrive by pub/sub; only the worker holding the job acts on it
  // (cancelJob is false elsewhere). The API also sets a key the processor checks before each
  // upstream call, so a message missed during a reconnect cannot let a cancelled job be billed.
  const cancelSubscriber = createRedisConnection(options.redisUrl, 'worker');
  cancelSubscriber.on('message', (_channel: string, jobId: string) => {
    if (worker.cancelJob(jobId, CANCEL_REASON)) logger.info({ jobId }, 'Cancelling an active job on request');
  });
  await cancelSubscriber.subscribe(cancelChannel(options.prefix));
  // Said once start-up is over (every step above may wait on Redis): "ready" means started.
  logger.info(
    { concurrency: options.concurrency, accounts: options.accounts.map((a) => ({ id: a.id, region: a.region, rpm: a.rpm })), storage: options.storage.description },
    `Worker ready: ${options.concurrency} at once; ${options.accounts.map((a) => `${a.id} (${a.region}, ~${a.rpm} rpm)`).join(', ')}`,
  );

  let closing: Promise<{ timedOut: boolean }> | undefined;
  async function close(closeOptions: { deadline?: number } = {}): Promise<{ timedOut: boolean }> {
    closing ??= (async () => {
      // One deadline for the drain and every close step after it: with Redis unreachable each of
      // them (BullMQ's close, queue.close, quit() behind ioredis' offline queue) waits for a
      // reconnect that may never come.
      const deadline = closeOptions.deadline ?? Date.now() + options.shutdownTimeoutMs;
      logger.info({ timeoutMs: Math.max(0, deadline - Date.now()) }, 'Shutting down: no new jobs; waiting for in-flight ones');
      for (const timer of timers) clearInterval(timer);
      supervisor.stop();
      admission.stop();
      const abandoned: string[] = [];
      const drained = await settlesBy(
        worker.close().catch((error: unknown) => logger.warn({ err: error }, 'Closing the BullMQ worker failed')),
        deadline,
      );
      if (!drained) {
        // BullMQ's close cannot be hurried (close(true) waits for the graceful close already under
        // way), so we stop waiting instead: the caller exits, the jobs' locks expire, and another
        // worker resumes them from their checkpoints.
        logger.warn({ timeoutMs: options.shutdownTimeoutMs }, 'Shutdown timeout: exiting with jobs in flight (or Redis unreachable); another worker will resume them');
        abandoned.push('BullMQ worker (in-flight jobs or Redis)');
      }
      const steps: [string, () => Promise<unknown>][] = [
        ['queue', () => queue.close()],
        // The last calls' reports, so their leases stop counting as in flight at once.
        ['governor reports', () => governor.flush()],
        ['clients', () => Promise.all([...clients.values()].map((c) => c.close()))],
        ['dispatcher', () => dispatcher.close()],
        ['redis', () => redis.quit()],
        ['cancel subscriber', () => cancelSubscriber.quit()],
        ['queue connection', () => queueConnection.quit()],
        ['worker connection', () => workerConnection.quit()],
      ];
      for (const [name, step] of drained ? steps : []) {
        const closed = await settlesBy(step().catch((error: unknown) => logger.warn({ err: error }, `Closing ${name} failed`)), deadline);
        if (!closed) {
          abandoned.push(...steps.slice(steps.findIndex(([n]) => n === name)).map(([n]) => n));
          break;
        }
      }
      if (abandoned.length > 0) {
        // disconnect(), unlike quit(), neither waits for Redis nor for a reconnect: pending commands
        // are dropped (the jobs they belong to are recovered as stalled). HTTP calls still in
        // flight end with the process.
        for (const connection of [redis, cancelSubscriber, queueConnection, workerConnection]) connection.disconnect();
        logger.warn({ abandoned, timeoutMs: options.shutdownTimeoutMs }, `Shutdown cut short at the deadline: abandoned ${abandoned.join(', ')}; Redis connections disconnected`);
        return { timedOut: true };
      }
      logger.info('Worker stopped');
      return { timedOut: false };
    })();
    return closing;
  }

  return { worker, queue, governor, close };
}

/**
 * Whether `promise` settles by `deadline` (epoch ms); it is left running either way. The timer
 * is not unref'd: a close still waiting must keep the process alive until it is decided.
 */
function settlesBy(promise: Promise<unknown>, deadline: number): Promise<boolean> {
  return new Promise((resolve) => {
    const timer = setTimeout(() => resolve(false), Math.max(0, deadline - Date.now()));
    const settled = () => {
      clearTimeout(timer);
      resolve(true);
    };
    promise.then(settled, settled);
  });
}

/**
 * The error of a job BullMQ failed: the processor's own AppError (carried as `cause` by
 * toUnrecoverable/toRetryable), else BullMQ's own verdict (an UnrecoverableError without a cause:
 * "job stalled more than allowable limit"), else whatever escaped the processor, as INTERNAL.
 */
function failedJobError(err: Error): AppError {
  const cause = (err as Error & { cause?: unknown }).cause;
  if (isAppError(cause)) return cause;
  if (err instanceof UnrecoverableError || err.name === 'UnrecoverableError') return new AppError('JOB_STALLED', err.message);
  return toAppError(err);
}
