/** A producer configured from the parsed environment (every command that enqueues or reads status). */
import { createProducer, type Producer } from '@zimage/producer';
import type { ProducerEnv } from '@zimage/shared';

export function producerFromEnv(env: ProducerEnv): Promise<Producer> {
  return createProducer({
    redisUrl: env.REDIS_URL,
    prefix: env.ZIMAGE_PREFIX,
    maxAttempts: env.ZIMAGE_MAX_ATTEMPTS,
    retentionHours: env.ZIMAGE_RETENTION_HOURS,
    eventsMaxLen: env.ZIMAGE_EVENTS_MAXLEN,
    webhookPolicy: { allowedHosts: env.ZIMAGE_WEBHOOK_ALLOWED_HOSTS },
  });
}
