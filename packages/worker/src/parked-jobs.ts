/**
 * Paid images parked for an operator: the job waits in "delayed" with its checkpoint (the image
 * URL, valid for 24 hours), and its reason is recorded here. `zimage jobs parked` lists them;
 * `zimage jobs retry ID [--key NEW_KEY]` tries to store the image again now, under a new key if
 * given (from its checkpoint: no new generation while the link lives). A failed job is not
 * retried this way, but by the bulk retry (`zimage jobs retry --batch`, producer `retryJobs`),
 * which also takes it out of its batch's failed count.
 */
import { AppError, assertSafeObjectKey, GENERATE_QUEUE, parkedJobsKey, type JobPayload, type JobResult } from '@zimage/shared';
import { Job, Queue } from 'bullmq';
import type { Redis } from 'ioredis';

export interface ParkedReason {
  code: string;
  message: string;
  action: string;
  at: string;
}

export async function recordParked(redis: Redis, prefix: string, jobId: string, reason: ParkedReason): Promise<void> {
  await redis.hset(parkedJobsKey(prefix), jobId, JSON.stringify(reason));
}

export async function listParked(redis: Redis, prefix: string): Promise<(ParkedReason & { jobId: string })[]> {
  const all = await redis.hgetall(parkedJobsKey(prefix));
  return Object.entries(all)
    .map(([jobId, raw]) => ({ jobId, ...(JSON.parse(raw) as ParkedReason) }))
    .sort((a, b) => a.at.localeCompare(b.at));
}

export async function countParked(redis: Redis, prefix: string): Promise<number> {
  return redis.hlen(parkedJobsKey(prefix));
}

/** Called when a job stores its image: it is no longer parked. */
export async function clearParked(redis: Redis, prefix: string, jobId: string): Promise<void> {
  await redis.hdel(parkedJobsKey(prefix), jobId);
}

/**
 * Retries a parked job now, optionally under a new key. Throws JOB_NOT_FOUND, or REQUEST_INVALID
 * when the job is not parked or the new key is invalid.
 */
export async function retryParkedJob(redis: Redis, prefix: string, jobId: string, options: { key?: string | undefined } = {}): Promise<{ jobId: string; key: string }> {
  if (options.key !== undefined) {
    try {
      assertSafeObjectKey(options.key);
    } catch (error) {
      throw new AppError('REQUEST_INVALID', `--key: ${(error as Error).message}`, { cause: error });
    }
  }
  const queue = new Queue<JobPayload, JobResult>(GENERATE_QUEUE, { connection: redis, prefix });
  queue.on('error', () => {});
  try {
    const job = await Job.fromId<JobPayload, JobResult>(queue, jobId);
    if (!job) throw new AppError('JOB_NOT_FOUND', `no job ${jobId}`);
    const state = await job.getState();
    const parked = (await redis.hexists(parkedJobsKey(prefix), jobId)) === 1;
    if (!parked || state !== 'delayed') {
      throw new AppError('REQUEST_INVALID', `job ${jobId} is ${state}, not parked: only a parked job can be retried (a failed one: enqueue it again)`);
    }
    const key = options.key ?? job.data.key;
    if (options.key !== undefined) await job.updateData({ ...job.data, key });
    await redis.hdel(parkedJobsKey(prefix), jobId);
    await job.promote();
    return { jobId, key };
  } finally {
    await queue.close();
  }
}
