/**
 * Wires the processor into a BullMQ worker: connections, pacing, the backoff strategy, the
 * account-error pause, and an idempotent, time-boxed `close()` for graceful shutdown.
 */
import {
  AppError,
  createRedisConnection,
  DEFAULT_PUBLISH_OPTIONS,
  ERROR_CATALOGUE,
  GENERATE_QUEUE,
  pauseReasonKey,
  waitForRedis,
  type JobPayload,
  type JobResult,
  type Logger,
  type Region,
  type Storage,
} from '@zimage/shared';
import { Queue, Worker } from 'bullmq';
import { Agent } from 'undici';
import { BACKOFF_TYPE, backoffDelay, RETRY_BACKOFF, type BackoffPolicy } from './backoff.js';
import { createDashscopeClient, type DashscopeClient } from './dashscope-client.js';
import { imageHostPolicy } from './image-hosts.js';
import { createProcessor, errorFromFailedReason, publishFailedEvent, type GenerationJob } from './process-job.js';

export interface GenerationWorkerOptions {
  redisUrl: string;
  prefix: string;
  logger: Logger;
  region: Region;
  baseUrl: string;
  apiKey: string;
  /** STORAGE_URL and the S3 settings, or a ready storage (tests). */
  storage: Storage;
  /** The account's requests per minute; jobs start at most this often, evenly spaced. */
  rpm: number;
  concurrency: number;
  imageHosts?: readonly string[] | undefined;
  maxImageBytes: number;
  requestTimeoutMs: number;
  connectTimeoutMs: number;
  /** How long `close()` waits for in-flight jobs before giving up on them, ms. */
  shutdownTimeoutMs: number;
  /** Cap on the event stream's length. @defaultValue 100000 */
  eventsMaxLen?: number;
  /** Generations allowed after the first because of expired URLs. @defaultValue 2 */
  maxRegenerations?: number;
  /** Backoff for transient errors. @defaultValue RETRY_BACKOFF (1 s doubling to 60 s, 50% jitter) */
  retryBackoff?: BackoffPolicy;
  /** Backoff for throttling. @defaultValue THROTTLE_BACKOFF (1 s doubling to 30 s, 50% jitter) */
  throttleBackoff?: BackoffPolicy;
  /** Injected client (tests of client behaviour use the emulator instead; this is for wrappers). */
  client?: DashscopeClient;
}

export interface GenerationWorker {
  readonly worker: Worker<JobPayload, JobResult>;
  readonly queue: Queue<JobPayload, JobResult>;
  /** Stops taking jobs, waits for in-flight ones up to the shutdown timeout, closes everything. */
  close(): Promise<void>;
}


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
  const dispatcher = new Agent({ connect: { timeout: options.connectTimeoutMs }, keepAliveTimeout: 30_000, connections: 64 });
  const client =
    options.client ??
    createDashscopeClient({
      baseUrl: options.baseUrl,
      apiKey: options.apiKey,
      connectTimeoutMs: options.connectTimeoutMs,
      requestTimeoutMs: options.requestTimeoutMs,
      dispatcher,
    });
  const queue = new Queue<JobPayload, JobResult>(GENERATE_QUEUE, { connection: queueConnection, prefix: options.prefix });
  const publish = { ...DEFAULT_PUBLISH_OPTIONS, prefix: options.prefix, maxLen: options.eventsMaxLen ?? DEFAULT_PUBLISH_OPTIONS.maxLen };

  let pausedByUs = false;
  async function onAccountError(error: AppError): Promise<void> {
    await queue.pause();
    const action = ERROR_CATALOGUE[error.code].action;
    await redis.set(pauseReasonKey(options.prefix), JSON.stringify({ code: error.code, message: error.message, action, at: new Date().toISOString() }));
    if (!pausedByUs) {
      pausedByUs = true;
      logger.fatal({ err: error, action }, `QUEUE PAUSED — ${error.code}: ${error.message}. ${action}`);
    }
  }

  const processor = createProcessor({
    client,
    storage: options.storage,
    redis,
    queue,
    logger,
    region: options.region,
    download: {
      dispatcher,
      policy: imageHostPolicy(options.imageHosts, options.baseUrl),
      maxBytes: options.maxImageBytes,
      timeoutMs: options.requestTimeoutMs,
    },
    publish,
    onAccountError,
    ...(options.maxRegenerations === undefined ? {} : { maxRegenerations: options.maxRegenerations }),
    ...(options.throttleBackoff === undefined ? {} : { throttleBackoff: options.throttleBackoff }),
  });

  const worker = new Worker<JobPayload, JobResult>(GENERATE_QUEUE, processor, {
    connection: workerConnection,
    prefix: options.prefix,
    concurrency: options.concurrency,
    // A smooth fleet-wide pace: one job start per 60000/rpm ms across every worker process, never
    // a minute's quota in one burst. (The adaptive governor replaces this later.)
    limiter: { max: 1, duration: Math.max(1, Math.floor(60_000 / options.rpm)) },
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
  // too often): publishing is idempotent, so jobs already reported are not reported twice.
  worker.on('failed', (job: GenerationJob | undefined) => {
    if (!job) return;
    void (async () => {
      if (!(await job.isFailed())) return;
      const error = errorFromFailedReason(job.failedReason);
      if (error.code === 'JOB_EXPIRED') return; // reported as job.expired, not job.failed
      await publishFailedEvent({ redis, publish }, job, undefined, error);
    })().catch((error: unknown) => logger.error({ err: error, jobId: job.id }, 'Could not publish job.failed'));
  });

  await worker.waitUntilReady();
  logger.info(
    { concurrency: options.concurrency, rpm: options.rpm, region: options.region, storage: options.storage.description },
    `Worker ready: ${options.concurrency} at once, paced at ${options.rpm} requests a minute`,
  );

  let closing: Promise<void> | undefined;
  async function close(): Promise<void> {
    closing ??= (async () => {
      logger.info({ timeoutMs: options.shutdownTimeoutMs }, 'Shutting down: no new jobs; waiting for in-flight ones');
      const graceful = worker.close().then(() => 'done' as const);
      const outcome = await Promise.race([graceful, sleep(options.shutdownTimeoutMs).then(() => 'timeout' as const)]);
      if (outcome === 'timeout') {
        // Jobs still running will be picked up again by another worker once their lock expires;
        // their checkpoints mean no paid image is generated twice.
        logger.warn('Shutdown timeout: leaving in-flight jobs to be recovered by another worker');
        await worker.close(true).catch((error: unknown) => logger.error({ err: error }, 'Force close failed'));
      }
      const steps: [string, () => Promise<unknown>][] = [
        ['queue', () => queue.close()],
        ['client', () => client.close()],
        ['dispatcher', () => dispatcher.close()],
        ['redis', () => redis.quit()],
        ['queue connection', () => queueConnection.quit()],
        ['worker connection', () => workerConnection.quit()],
      ];
      for (const [name, step] of steps) {
        await step().catch((error: unknown) => logger.warn({ err: error }, `Closing ${name} failed`));
      }
      logger.info('Worker stopped');
    })();
    return closing;
  }

  return { worker, queue, close };
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms).unref());
}
