/**
 * What every part of the producer works on: one Redis connection, the BullMQ queue, the key
 * prefix and the policies fixed at creation. Opened once by `createProducer`.
 */
import {
  createRedisConnection,
  DEFAULT_PUBLISH_OPTIONS,
  ensureConsumerGroup,
  GENERATE_QUEUE,
  generateJobOptions,
  waitForRedis,
  WEBHOOK_CONSUMER_GROUP,
  WebhookUrlChecker,
  type JobPayload,
  type JobResult,
  type Resolver,
  type StorageKeyLimits,
  type WebhookUrlPolicy,
} from '@zimage/shared';
import { Queue } from 'bullmq';
import type { Redis } from 'ioredis';

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

export interface ProducerContext {
  readonly redisUrl: string;
  readonly connection: Redis;
  readonly queue: Queue<JobPayload, JobResult>;
  readonly prefix: string;
  /** Finished jobs, idempotency keys and cancel records live this long. */
  readonly retentionSeconds: number;
  readonly publish: { prefix: string; maxLen: number };
  readonly webhooks: WebhookUrlChecker;
  readonly keyLimits: StorageKeyLimits | undefined;
  readonly jobOptions: ReturnType<typeof generateJobOptions>;
}

export async function openProducerContext(options: ProducerOptions): Promise<ProducerContext> {
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
  return {
    redisUrl: options.redisUrl,
    connection,
    queue,
    prefix: options.prefix,
    retentionSeconds,
    publish: { prefix: options.prefix, maxLen: options.eventsMaxLen ?? DEFAULT_PUBLISH_OPTIONS.maxLen },
    webhooks: new WebhookUrlChecker(options.webhookPolicy ?? { allowedHosts: [] }, options.resolve),
    keyLimits: options.keyLimits,
    jobOptions: generateJobOptions({ attempts: options.maxAttempts ?? 6, retentionSeconds }),
  };
}

/** The Redis key of a job's hash, as BullMQ names it. */
export function jobHashKey(context: ProducerContext, jobId: string): string {
  return context.queue.toKey(jobId);
}

/** Batch records outlive their jobs by a week, so a late status query still finds the totals. */
export function batchRetentionSeconds(context: ProducerContext): number {
  return context.retentionSeconds + 7 * 24 * 3600;
}
