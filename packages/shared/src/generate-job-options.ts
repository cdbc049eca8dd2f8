/**
 * How a generation job is added to BullMQ: its name, its backoff type and its base options. The
 * producer adds jobs with these; the worker registers its backoff strategy under the same type.
 */
import type { JobsOptions } from 'bullmq';

/** BullMQ job name of every generation job. */
export const GENERATE_JOB_NAME = 'generate';

/** Backoff type jobs are enqueued with; the worker's custom backoff strategy answers to it. */
export const BACKOFF_TYPE = 'zimage';

export interface GenerateJobPolicy {
  /** Attempts for transient errors (throttles do not use one). */
  attempts: number;
  /** How long a finished job is kept (status, results, idempotency keys), seconds. */
  retentionSeconds: number;
}

/** The options every generation job shares; the caller adds `jobId` and `priority`. */
export function generateJobOptions(policy: GenerateJobPolicy): Pick<JobsOptions, 'attempts' | 'backoff' | 'removeOnComplete' | 'removeOnFail'> {
  return {
    attempts: policy.attempts,
    backoff: { type: BACKOFF_TYPE },
    removeOnComplete: { age: policy.retentionSeconds },
    removeOnFail: { age: policy.retentionSeconds },
  };
}
