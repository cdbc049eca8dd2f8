/** A producer configured from the parsed environment (every command that enqueues or reads status). */
import { createProducer, type Producer } from '@zimage/producer';
import { parseStorageUrl, storageKeyLimits, type ProducerEnv } from '@zimage/shared';

export async function producerFromEnv(env: ProducerEnv): Promise<Producer> {
  return createProducer({
    redisUrl: env.REDIS_URL,
    prefix: env.ZIMAGE_PREFIX,
    maxAttempts: env.ZIMAGE_MAX_ATTEMPTS,
    retentionHours: env.ZIMAGE_RETENTION_HOURS,
    eventsMaxLen: env.ZIMAGE_EVENTS_MAXLEN,
    webhookPolicy: { allowedHosts: env.ZIMAGE_WEBHOOK_ALLOWED_HOSTS },
    // Worked out once here: every key is then checked against the workers' folder or S3 prefix
    // at enqueue, before an image that could not be stored is generated and billed.
    keyLimits: storageKeyLimits(parseStorageUrl(env.STORAGE_URL)),
  });
}
