/** `zimage api`: the HTTP API, until SIGINT/SIGTERM. */
import { createApi } from '@zimage/api';
import { apiEnvSchema, createLogger, createRedisConnection, loadConfig, waitForRedis } from '@zimage/shared';
import { checkWithin, startHealthFile } from '../health-file.js';
import { parseInteger } from '../parse-options.js';
import { producerFromEnv } from '../producer-from-env.js';
import { storageFromEnv } from '../storage-from-env.js';

export async function apiCommand(flags: { port?: string; host?: string; json?: boolean }): Promise<number> {
  const env = loadConfig(apiEnvSchema, process.env);
  const port = parseInteger('--port', flags.port) ?? env.PORT;
  const logger = createLogger({ level: env.LOG_LEVEL, secrets: [...env.ZIMAGE_API_TOKENS, ...env.ZIMAGE_API_TENANT_TOKENS.keys(), env.AWS_SECRET_ACCESS_KEY], ...(flags.json ? { pretty: false } : {}) });
  const storage = storageFromEnv(env);
  const producer = await producerFromEnv(env);
  // The API's own connection waits out Redis restarts instead of failing requests at once.
  const redis = createRedisConnection(env.REDIS_URL, 'worker');
  await waitForRedis(redis, env.REDIS_URL);
  const app = await createApi({ producer, redis, storage, prefix: env.ZIMAGE_PREFIX, tokens: env.ZIMAGE_API_TOKENS, tenantTokens: env.ZIMAGE_API_TENANT_TOKENS, logger, maxBodyBytes: env.ZIMAGE_API_MAX_BODY_BYTES, scheduleFilesDir: env.ZIMAGE_SCHEDULE_FILES_DIR, metrics: { token: env.ZIMAGE_METRICS_TOKEN, public: env.ZIMAGE_METRICS_PUBLIC } });
  const address = await app.listen({ port, host: flags.host ?? env.ZIMAGE_API_HOST });
  logger.info({ address }, `API listening on ${address}`);
  process.stderr.write(`zimage api listening on ${address}\n`);
  const health = env.ZIMAGE_HEALTH_FILE
    ? startHealthFile(env.ZIMAGE_HEALTH_FILE, 'api', async () => ({ redis: await checkWithin(() => redis.ping()), storage: await checkWithin(() => storage.check()) }))
    : undefined;
  await new Promise<void>((resolve) => {
    const stop = (signal: NodeJS.Signals) => {
      logger.info({ signal }, `Received ${signal}; closing the API`);
      process.once(signal, () => process.exit(130));
      resolve();
    };
    process.once('SIGINT', stop);
    process.once('SIGTERM', stop);
  });
  health?.stop();
  await app.close();
  await producer.close();
  await storage.close();
  redis.disconnect();
  logger.flush();
  return 0;
}
