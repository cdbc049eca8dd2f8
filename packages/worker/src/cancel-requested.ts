/**
 * Whether a cancel was asked for this job (`DELETE /v1/jobs/:id`, `zimage cancel`). The flag holds
 * the creation time of the job it cancels, so a job re-submitted later under the same id (the same
 * idempotency key) is not cancelled by a flag meant for the one before.
 */
import { cancelRequestKey } from '@zimage/shared';
import type { Redis } from 'ioredis';
import type { GenerationJob } from './generation-job.js';

export async function cancelRequested(redis: Redis, prefix: string, job: Pick<GenerationJob, 'id' | 'timestamp'>): Promise<boolean> {
  const flag = await redis.get(cancelRequestKey(prefix, String(job.id)));
  return flag !== null && flag === String(job.timestamp);
}
