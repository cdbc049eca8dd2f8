/**
 * Builds the completion events of a generation job and publishes them (exactly once per job:
 * see shared/src/event-publisher.ts).
 */
import {
  jobIncarnation,
  makeEvent,
  publishJobEvent,
  type AppError,
  type JobPayload,
  type JobResult,
  type PublishOptions,
} from '@zimage/shared';
import type { Redis } from 'ioredis';
import type { GenerationJob } from './generation-job.js';

export interface EventSink {
  redis: Redis;
  publish: PublishOptions;
}

export async function publishSucceeded(sink: EventSink, job: GenerationJob, payload: JobPayload, result: JobResult): Promise<void> {
  const event = makeEvent('job.succeeded', String(job.id), { jobId: String(job.id), batchId: payload.batchId, metadata: payload.metadata, result }, result.completedAt);
  const manifest = { jobId: String(job.id), line: payload.line, rowKey: payload.rowKey, status: 'succeeded' as const, key: result.key, sha256: result.sha256 };
  await publishJobEvent(sink.redis, { event, outcome: 'succeeded', manifest, webhook: payload.webhook, incarnation: jobIncarnation(job.timestamp, payload) }, sink.publish);
}

export async function publishExpired(sink: EventSink, job: GenerationJob, payload: JobPayload, deadline: string): Promise<void> {
  const event = makeEvent('job.expired', String(job.id), { jobId: String(job.id), batchId: payload.batchId, metadata: payload.metadata, deadline });
  const manifest = { jobId: String(job.id), line: payload.line, rowKey: payload.rowKey, status: 'expired' as const, errorCode: 'JOB_EXPIRED' };
  await publishJobEvent(sink.redis, { event, outcome: 'expired', manifest, webhook: payload.webhook, incarnation: jobIncarnation(job.timestamp, payload) }, sink.publish);
}

/**
 * `job.failed`; `payload` is undefined when the job's data could not be read. A cancelled job is a
 * `job.failed` with code JOB_CANCELLED, counted as `cancelled` in its batch.
 */
export async function publishFailed(sink: EventSink, job: GenerationJob, payload: JobPayload | undefined, error: AppError, outcome: 'failed' | 'cancelled' = 'failed'): Promise<void> {
  const data = job.data as Partial<JobPayload> | undefined;
  const batchId = payload?.batchId ?? (typeof data?.batchId === 'string' ? data.batchId : undefined);
  const event = makeEvent('job.failed', String(job.id), {
    jobId: String(job.id),
    batchId,
    metadata: payload?.metadata ?? {},
    error: {
      code: error.code,
      message: error.message,
      upstreamCode: typeof error.details['upstreamCode'] === 'string' ? error.details['upstreamCode'] : undefined,
      requestId: typeof error.details['requestId'] === 'string' ? error.details['requestId'] : undefined,
    },
    attempts: job.attemptsMade + 1,
  });
  const manifest = { jobId: String(job.id), line: payload?.line, rowKey: payload?.rowKey, status: outcome, errorCode: error.code };
  await publishJobEvent(sink.redis, { event, outcome, manifest, webhook: payload?.webhook, incarnation: jobIncarnation(job.timestamp, payload) }, sink.publish);
}
