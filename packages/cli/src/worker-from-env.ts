/**
 * Builds a generation worker (and, unless ZIMAGE_WEBHOOK_DISPATCHER=false, the webhook dispatcher
 * beside it) from parsed environment configuration (the `worker` and `demo` commands share it).
 */
import { startScheduleRunner } from '@zimage/producer';
import { type AccountConfig, type Logger, type WebhookEndpoint, type WorkerEnv } from '@zimage/shared';
import { startGenerationWorker, startWebhookDispatcher, type GenerationWorker, type WebhookDispatcher } from '@zimage/worker';
import { producerFromEnv } from './producer-from-env.js';
import { storageFromEnv } from './storage-from-env.js';

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
  const schedules = startScheduleRunner({ redisUrl: env.REDIS_URL, prefix: env.ZIMAGE_PREFIX, logger, producer, policy: { allowedHosts: env.ZIMAGE_WEBHOOK_ALLOWED_HOSTS } });
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
    shutdownTimeoutMs: env.ZIMAGE_SHUTDOWN_TIMEOUT_MS ?? env.ZIMAGE_REQUEST_TIMEOUT_MS * 2 + 30_000,
    eventsMaxLen: env.ZIMAGE_EVENTS_MAXLEN,
  }).catch(async (error: unknown) => {
    await schedules.close();
    await producer.close();
    await webhooks?.close();
    throw error;
  });
  return {
    ...worker,
    async close() {
      await schedules.close();
      // Generation first (its last events still reach the stream), then deliveries in flight.
      const outcome = await worker.close();
      await webhooks?.close();
      await producer.close();
      return outcome;
    },
  };
}
