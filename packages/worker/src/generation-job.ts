import type { JobPayload, JobResult } from '@zimage/shared';
import type { Job } from 'bullmq';

/** A job of the `generate` queue. */
export type GenerationJob = Job<JobPayload, JobResult>;
