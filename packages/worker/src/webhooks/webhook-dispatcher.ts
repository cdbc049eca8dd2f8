/**
 * The webhook dispatcher: a fan-out loop and a delivery worker, both in their own lanes so that a
 * slow or dead receiver never slows image generation.
 *
 * 1. Fan-out reads the event stream through the consumer group `webhooks` (at-least-once: an
 *    event is acknowledged only once its deliveries are queued, and a crashed dispatcher's events
 *    are claimed by another) and adds one job per (event, endpoint) to the `webhooks` queue. The
 *    job id is derived from both, so reading an event twice queues it once.
 * 2. Deliveries are BullMQ jobs: attempts = 1 + the retry schedule, the backoff strategy applies
 *    the schedule with jitter (or the receiver's Retry-After). After the last attempt a delivery
 *    stays in the queue's failed set: that is the dead-letter list `zimage webhooks replay` uses.
 */
import { hostname } from 'node:os';
import {
  consumeEvents,
  createRedisConnection,
  deliveryJobId,
  DELIVERY_LOG_TTL_SECONDS,
  ensureConsumerGroup,
  createOutboundAgent,
  nextRetryDelay,
  webhookDeliveriesKey,
  WEBHOOK_CONSUMER_GROUP,
  WEBHOOK_QUEUE,
  type DeliveryJobData,
  type Logger,
  type Storage,
  type WebhookEndpoint,
  type WebhookUrlPolicy,
} from '@zimage/shared';
import { Queue, Worker } from 'bullmq';
import { deliverWebhook, type DeliveryResult } from './deliver-webhook.js';
import { deliveryTargets } from './delivery-targets.js';

export { WEBHOOK_CONSUMER_GROUP };

export interface WebhookDispatcherOptions {
  redisUrl: string;
  prefix: string;
  logger: Logger;
  endpoints: readonly WebhookEndpoint[];
  /** ZIMAGE_WEBHOOK_SECRET (per-job webhooks); undefined → such deliveries are dead-lettered. */
  jobSecretKeys: readonly Buffer[] | undefined;
  policy: WebhookUrlPolicy;
  /** Delays between attempts, ms (ZIMAGE_WEBHOOK_RETRY_SCHEDULE). */
  retrySchedule: readonly number[];
  timeoutMs: number;
  concurrency: number;
  /** For presigned links in `job.succeeded` payloads. */
  storage?: Pick<Storage, 'presignedUrl'>;
  /** How long delivered jobs are kept (failed ones, the dead letters, are kept 30 days). @defaultValue 168 */
  retentionHours?: number;
  /** This process's name in the consumer group. @defaultValue hostname-pid */
  consumerName?: string;
  /** Entries left pending by a stopped or dead dispatcher are claimed after this (handling one read takes milliseconds). @defaultValue 10000 */
  claimIdleMs?: number;
}

export interface WebhookDispatcher {
  readonly queue: Queue<DeliveryJobData, DeliveryResult>;
  close(): Promise<void>;
}

export async function startWebhookDispatcher(options: WebhookDispatcherOptions): Promise<WebhookDispatcher> {
  const { prefix, logger } = options;
  const connection = createRedisConnection(options.redisUrl, 'worker');
  const streamConnection = createRedisConnection(options.redisUrl, 'worker');
  const retentionSeconds = (options.retentionHours ?? 24 * 7) * 3600;
  const queue = new Queue<DeliveryJobData, DeliveryResult>(WEBHOOK_QUEUE, { connection, prefix });
  queue.on('error', () => {}); // the delivery worker's 'error' handler logs connection trouble
  const dispatcher = createOutboundAgent({
    connectTimeoutMs: Math.min(10_000, options.timeoutMs),
    guard: options.policy,
    requestTimeoutMs: options.timeoutMs,
    keepAliveTimeoutMs: 4_000,
  });
  const endpoints = new Map(options.endpoints.map((e) => [e.id, e]));
  const schedule = [...options.retrySchedule];
  const nextDelayMs = (attemptsMade: number, retryAfterMs?: number) => nextRetryDelay(schedule, attemptsMade, retryAfterMs);
  // The delivery computes its next delay once (for its log line) and carries it on the error, so
  // the log says when BullMQ will really try again; -1 tells BullMQ not to retry.
  const backoffStrategy = (attemptsMade: number, _type?: string, err?: Error) =>
    (err as (Error & { retryDelayMs?: number }) | undefined)?.retryDelayMs ?? nextDelayMs(attemptsMade) ?? -1;

  const worker = new Worker<DeliveryJobData, DeliveryResult>(
    WEBHOOK_QUEUE,
    (job) =>
      deliverWebhook(job, {
        redis: connection,
        prefix,
        logger,
        dispatcher,
        policy: options.policy,
        endpoints,
        jobSecretKeys: options.jobSecretKeys,
        storage: options.storage,
        timeoutMs: options.timeoutMs,
        nextDelayMs,
      }),
    {
      connection,
      prefix,
      concurrency: options.concurrency,
      settings: { backoffStrategy },
    },
  );
  worker.on('error', (error) => logger.error({ err: error }, 'Webhook delivery worker error'));

  // The group is created when the first producer or dispatcher starts ('$': from then on, so a
  // first deployment does not send registered endpoints the stream's whole history; replay that
  // with `replayGroupFrom` if wanted). Producers create it too, before they can publish anything.
  await ensureConsumerGroup(connection, prefix, WEBHOOK_CONSUMER_GROUP, '$');
  const stop = new AbortController();
  const fanoutOnce = () => consumeEvents(
    {
      redis: streamConnection,
      prefix,
      group: WEBHOOK_CONSUMER_GROUP,
      consumer: options.consumerName ?? `${hostname()}-${process.pid}`,
      blockMs: 2_000,
      claimIdleMs: options.claimIdleMs ?? 10_000,
      // A handler failure here is Redis refusing a write (OOM, failover): retry it until Redis
      // recovers rather than dead-letter a delivery nobody could replay. Only unreadable entries
      // are dead-lettered.
      maxDeliveries: Number.MAX_SAFE_INTEGER,
      signal: stop.signal,
      onDeadLetter: ({ streamId, error }) => logger.error({ streamId, err: error }, `Event ${streamId} could not be read; no webhook is sent for it`),
    },
    async ({ event, fields }) => {
      const { targets, unreadableWebhook } = deliveryTargets(event, fields, options.endpoints);
      if (unreadableWebhook) logger.warn({ eventId: event.id }, `Event ${event.id} carries an unreadable webhook field; its own webhook is skipped`);
      if (targets.length === 0) return;
      const jobs = targets.map((target) => ({
        name: event.type,
        data: {
          eventId: event.id,
          eventType: event.type,
          eventTimestamp: event.timestamp,
          endpointId: target.endpointId,
          ...(target.url ? { url: target.url } : {}),
          event,
        } satisfies DeliveryJobData,
        opts: {
          jobId: deliveryJobId(event.id, target.endpointId),
          attempts: schedule.length + 1,
          backoff: { type: 'webhook' },
          removeOnComplete: { age: retentionSeconds },
          removeOnFail: { age: DELIVERY_LOG_TTL_SECONDS },
        },
      }));
      const key = webhookDeliveriesKey(prefix, event.id);
      await connection
        .multi()
        .sadd(key, ...jobs.map((j) => j.opts.jobId))
        .expire(key, DELIVERY_LOG_TTL_SECONDS)
        .exec();
      await queue.addBulk(jobs);
    },
  );
  // Supervised: a Redis error reply (MISCONF, READONLY after a failover) ends one consumeEvents
  // call; the fan-out starts again after a pause instead of stopping for good.
  const fanout = (async () => {
    let pauseMs = 500;
    while (!stop.signal.aborted) {
      try {
        await fanoutOnce();
        pauseMs = 500;
      } catch (error) {
        if (stop.signal.aborted) break;
        logger.error({ err: error }, `Webhook fan-out failed; restarting in ${pauseMs} ms`);
        await new Promise((resolve) => setTimeout(resolve, pauseMs));
        pauseMs = Math.min(30_000, pauseMs * 2);
      }
    }
  })();

  if (!options.jobSecretKeys?.length) {
    // Info, not warn: most deployments without a secret use no per-job webhooks at all.
    logger.info('ZIMAGE_WEBHOOK_SECRET is not set: this worker cannot sign per-job webhooks (it retries them for a worker that can; registered endpoints are unaffected)');
  }
  logger.info(
    { endpoints: options.endpoints.map((e) => ({ id: e.id, events: e.events })), schedule, concurrency: options.concurrency },
    `Webhook dispatcher ready: ${options.endpoints.length} registered endpoint(s), ${schedule.length + 1} attempts per delivery`,
  );

  let closing: Promise<void> | undefined;
  return {
    queue,
    close() {
      closing ??= (async () => {
        stop.abort();
        await worker.close();
        await fanout;
        await queue.close();
        await dispatcher.close().catch(() => {});
        await Promise.all([connection.quit().catch(() => {}), streamConnection.quit().catch(() => {})]);
      })();
      return closing;
    },
  };
}
