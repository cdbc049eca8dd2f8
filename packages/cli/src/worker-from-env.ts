/**
 * Builds a generation worker (and, unless ZIMAGE_WEBHOOK_DISPATCHER=false, the webhook dispatcher
 * beside it) from parsed environment configuration (the `worker` and `demo` commands share it).
 */
import { startScheduleRunner } from '@zimage/producer';
import { startEventStreamTrimmer, type AccountConfig, type Logger, type WebhookEndpoint, type WorkerEnv } from '@zimage/shared';
import { startGenerationWorker, startWebhookDispatcher, type GenerationWorker, type WebhookDispatcher } from '@zimage/worker';
import { producerFromEnv } from './producer-from-env.js';
import { storageFromEnv } from './storage-from-env.js';

/** ZIMAGE_SHUTDOWN_TIMEOUT_MS, or twice the request timeout plus 30 s so that a call in flight can finish. */
export function shutdownTimeoutMs(env: WorkerEnv): number {
  return env.ZIMAGE_SHUTDOWN_TIMEOUT_MS ?? env.ZIMAGE_REQUEST_TIMEOUT_MS * 2 + 30_000;
}

/**
 * How long past the deadline the generation worker's close is awaited: its forced phase
 * (disconnects, one log line) is synchronous, so this only covers a loaded event loop.
 */
const FORCED_CLOSE_GRACE_MS = 1_000;

export async function workerFromEnv(
  env: WorkerEnv,
  logger: Logger,
  accounts: readonly AccountConfig[],
  endpoints: readonly WebhookEndpoint[] = [],
): Promise<GenerationWorker> {
  const storage = storageFromEnv(env);
  await storage.check();
  // The dispatcher first: its consumer group must exist before the first event is published.
  let webhooks: WebhookDispatcher | undefined;
  if (env.ZIMAGE_WEBHOOK_DISPATCHER) {
    webhooks = await startWebhookDispatcher({
      redisUrl: env.REDIS_URL,
      prefix: env.ZIMAGE_PREFIX,
      logger,
      endpoints,
      jobSecretKeys: env.ZIMAGE_WEBHOOK_SECRET,
      policy: { allowedHosts: env.ZIMAGE_WEBHOOK_ALLOWED_HOSTS },
      retrySchedule: env.ZIMAGE_WEBHOOK_RETRY_SCHEDULE,
      timeoutMs: env.ZIMAGE_WEBHOOK_TIMEOUT_MS,
      concurrency: env.ZIMAGE_WEBHOOK_CONCURRENCY,
      storage,
    });
  }
  // Scheduled pipelines: each tick becomes a batch (BullMQ gives each tick to one worker). Started
  // before generation, so that once jobs run nothing is left to start (a SIGTERM from then on
  // finds everything in place to close).
  const producer = await producerFromEnv(env);
  const schedules = startScheduleRunner({ redisUrl: env.REDIS_URL, prefix: env.ZIMAGE_PREFIX, logger, producer, policy: { allowedHosts: env.ZIMAGE_WEBHOOK_ALLOWED_HOSTS }, filesDir: env.ZIMAGE_SCHEDULE_FILES_DIR, eventsMaxLen: env.ZIMAGE_EVENTS_MAXLEN });
  const worker = await startGenerationWorker({
    redisUrl: env.REDIS_URL,
    prefix: env.ZIMAGE_PREFIX,
    logger,
    accounts,
    storage,
    concurrency: env.ZIMAGE_CONCURRENCY,
    imageHosts: env.ZIMAGE_IMAGE_HOSTS,
    maxImageBytes: env.ZIMAGE_MAX_IMAGE_BYTES,
    requestTimeoutMs: env.ZIMAGE_REQUEST_TIMEOUT_MS,
    connectTimeoutMs: env.ZIMAGE_CONNECT_TIMEOUT_MS,
    shutdownTimeoutMs: shutdownTimeoutMs(env),
    eventsMaxLen: env.ZIMAGE_EVENTS_MAXLEN,
    budgets: env.ZIMAGE_BUDGETS,
    ...(env.ZIMAGE_FAIR_SHARE === undefined ? {} : { fairShare: env.ZIMAGE_FAIR_SHARE }),
    tenantWeights: env.ZIMAGE_TENANT_WEIGHTS,
  }).catch(async (error: unknown) => {
    // Bounded too: the usual reason to get here is Redis gone, and every close would wait for it.
    const deadline = Date.now() + shutdownTimeoutMs(env);
    const abandoned = await closeAllBy(deadline, logger, [
      ['schedule runner', () => schedules.close()],
      ['producer', () => producer.close()],
      ['webhook dispatcher', () => webhooks?.close()],
    ]);
    if (abandoned.length > 0) forceDisconnect();
    throw error;
  });
  // Trims the event stream to ZIMAGE_EVENTS_MAXLEN without cutting what a consumer group has not
  // read (the publishers' XADD only caps it far above): every worker runs one.
  const trimmer = startEventStreamTrimmer({ redisUrl: env.REDIS_URL, prefix: env.ZIMAGE_PREFIX, maxLen: env.ZIMAGE_EVENTS_MAXLEN, logger });

  // disconnect() instead of quit(): neither waits for Redis. BullMQ's blocking connections cannot
  // be reached from here; the caller exits the process.
  function forceDisconnect(): void {
    for (const queueBase of [schedules.worker, webhooks?.queue, producer.queue]) void queueBase?.disconnect().catch(() => {});
  }

  let closing: Promise<{ timedOut: boolean }> | undefined;
  return {
    ...worker,
    close(options: { deadline?: number } = {}) {
      closing ??= (async () => {
        // One deadline for every step (a signal received during start-up brings its own, earlier one).
        const deadline = options.deadline ?? Date.now() + shutdownTimeoutMs(env);
        const startedAt = Date.now();
        // The schedule runner and generation stop taking work at once: a tick still enqueueing must
        // not eat into the drain. Generation before deliveries (its last events still reach the
        // stream), then the producer.
        const [schedulesAbandoned, generation] = await Promise.all([
          closeAllBy(deadline, logger, [['schedule runner', () => schedules.close()]]),
          settledBy(
            worker.close({ deadline }).catch((error: unknown) => {
              logger.warn({ err: error }, 'Closing the generation worker failed');
              return { timedOut: true };
            }),
            deadline + FORCED_CLOSE_GRACE_MS,
          ),
        ]);
        const abandoned = [
          ...schedulesAbandoned,
          ...(generation.settled && !generation.value.timedOut ? [] : ['generation worker']),
          ...(await closeAllBy(deadline, logger, [
            ['webhook dispatcher', () => webhooks?.close()],
            ['producer', () => producer.close()],
            ['event stream trimmer', () => trimmer.close()],
          ])),
        ];
        if (abandoned.length === 0) return { timedOut: false };
        forceDisconnect();
        logger.warn(
          { abandoned, elapsedMs: Date.now() - startedAt, timeoutMs: shutdownTimeoutMs(env) },
          `Shutdown cut short by ZIMAGE_SHUTDOWN_TIMEOUT_MS: abandoned ${abandoned.join(', ')}; jobs in flight are recovered as stalled by another worker, from their checkpoints`,
        );
        return { timedOut: true };
      })();
      return closing;
    },
  };
}

/**
 * Runs the close steps one after another until `deadline` (epoch ms); returns the names of those
 * that had not finished by then (they are left running). A step that fails is logged and counts
 * as done: there is nothing left to wait for.
 */
async function closeAllBy(deadline: number, logger: Logger, steps: readonly [string, () => Promise<unknown> | undefined][]): Promise<string[]> {
  for (const [index, [name, step]] of steps.entries()) {
    const closing = Promise.resolve()
      .then(step)
      .catch((error: unknown) => logger.warn({ err: error }, `Closing the ${name} failed`));
    if (!(await settledBy(closing, deadline)).settled) return steps.slice(index).map(([n]) => n);
  }
  return [];
}

/**
 * `promise`'s value if it resolves by `deadline` (epoch ms); it is left running otherwise. The
 * timer is not unref'd: a close still waiting must keep the process alive until it is decided.
 */
function settledBy<T>(promise: Promise<T>, deadline: number): Promise<{ settled: true; value: T } | { settled: false }> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => resolve({ settled: false }), Math.max(0, deadline - Date.now()));
    promise.then(
      (value) => {
        clearTimeout(timer);
        resolve({ settled: true, value });
      },
      (error: unknown) => {
        clearTimeout(timer);
        reject(error instanceof Error ? error : new Error(String(error)));
      },
    );
  });
}
