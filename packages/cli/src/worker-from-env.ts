/**
 * Builds a generation worker from parsed environment configuration (the `worker` and `demo`
 * commands share it).
 */
import { createStorage, type AccountConfig, type Logger, type WorkerEnv } from '@zimage/shared';
import { startGenerationWorker, type GenerationWorker } from '@zimage/worker';

export async function workerFromEnv(env: WorkerEnv, logger: Logger, accounts: readonly AccountConfig[]): Promise<GenerationWorker> {
  const storage = createStorage({
    url: env.STORAGE_URL,
    s3: {
      region: env.AWS_REGION,
      endpoint: env.AWS_ENDPOINT_URL_S3,
      forcePathStyle: env.ZIMAGE_S3_FORCE_PATH_STYLE,
      accessKeyId: env.AWS_ACCESS_KEY_ID,
      secretAccessKey: env.AWS_SECRET_ACCESS_KEY,
    },
  });
  await storage.check();
  return startGenerationWorker({
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
  });
}
