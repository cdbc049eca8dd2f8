/**
 * Operator actions on webhook deliveries (`zimage webhooks …`): replay dead letters, read the
 * delivery log. Deliveries are BullMQ jobs, so a replay is `job.retry()` with the attempt counters
 * reset: the same job id, the same `webhook-id`, a full new schedule.
 */
import {
  AppError,
  listAttempts,
  webhookDeliveriesKey,
  type DeliveryAttempt,
  type DeliveryJobData,
} from '@zimage/shared';
import { Job, type Queue } from 'bullmq';
import type { Redis } from 'ioredis';

export interface ReplayOutcome {
  /** Delivery job ids put back in the queue. */
  replayed: string[];
  /** Deliveries left alone, with why (already delivered, still being retried, ...). */
  skipped: { jobId: string; state: string }[];
}

const RETRY = { resetAttemptsMade: true, resetAttemptsStarted: true } as const;

/**
 * Replays one event's dead-lettered deliveries (optionally to one endpoint only). With `force`,
 * deliveries that succeeded are sent again too (same webhook-id: receivers deduplicate).
 */
export async function replayEvent(
  redis: Redis,
  queue: Queue<DeliveryJobData>,
  prefix: string,
  eventId: string,
  options: { endpointId?: string; force?: boolean } = {},
): Promise<ReplayOutcome> {
  const jobIds = (await redis.smembers(webhookDeliveriesKey(prefix, eventId))).sort();
  if (jobIds.length === 0) throw new AppError('EVENT_NOT_FOUND', `No webhook deliveries known for event ${eventId} (kept 30 days)`);
  const outcome: ReplayOutcome = { replayed: [], skipped: [] };
  for (const jobId of jobIds) {
    const job = await Job.fromId<DeliveryJobData>(queue, jobId);
    if (!job) {
      outcome.skipped.push({ jobId, state: 'removed' });
      continue;
    }
    if (options.endpointId && job.data.endpointId !== options.endpointId) continue;
    const state = await job.getState();
    if (state === 'failed' || (state === 'completed' && options.force)) {
      // The state may change between the read and the retry (another replay, retention): report it.
      const retried = await job.retry(state, RETRY).then(() => true, () => false);
      if (retried) outcome.replayed.push(jobId);
      else outcome.skipped.push({ jobId, state: `${state}, changed during the replay` });
    } else {
      outcome.skipped.push({ jobId, state });
    }
  }
  if (options.endpointId && outcome.replayed.length + outcome.skipped.length === 0) {
    throw new AppError('EVENT_NOT_FOUND', `Event ${eventId} has no delivery to endpoint ${options.endpointId}`);
  }
  return outcome;
}

/** Replays every dead-lettered delivery to `endpointId` of events at or after `since`. */
export async function replayEndpoint(queue: Queue<DeliveryJobData>, endpointId: string, since: Date): Promise<ReplayOutcome> {
  const outcome: ReplayOutcome = { replayed: [], skipped: [] };
  const page = 500;
  // Retried jobs leave the failed set, so the pages shift: collect first, then retry.
  const matches: Job<DeliveryJobData>[] = [];
  for (let start = 0; ; start += page) {
    const jobs = await queue.getFailed(start, start + page - 1);
    for (const job of jobs) {
      if (job?.data.endpointId === endpointId && Date.parse(job.data.eventTimestamp) >= since.getTime()) matches.push(job);
    }
    if (jobs.length < page) break;
  }
  for (const job of matches) {
    const retried = await job.retry('failed', RETRY).then(() => true, () => false);
    if (retried) outcome.replayed.push(String(job.id));
    else outcome.skipped.push({ jobId: String(job.id), state: 'no longer failed' });
  }
  return outcome;
}

export async function deliveryLog(redis: Redis, prefix: string, eventId: string): Promise<DeliveryAttempt[]> {
  const attempts = await listAttempts(redis, prefix, eventId);
  if (attempts.length === 0 && (await redis.scard(webhookDeliveriesKey(prefix, eventId))) === 0) {
    throw new AppError('EVENT_NOT_FOUND', `No webhook deliveries known for event ${eventId} (kept 30 days)`);
  }
  return attempts;
}
