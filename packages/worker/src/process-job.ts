/**
 * The processor: validate the payload → generate (one upstream call) → download → store → emit.
 *
 * Each step leaves a checkpoint on the job, so a retry resumes where the last attempt stopped. The
 * rule that matters most: once the upstream has returned an image (and billed it), no retry calls
 * the API again — unless the image URL has expired, which is the only way to get the image back.
 */
import {
  AppError,
  ERROR_CATALOGUE,
  eventIdFor,
  formatFieldIssues,
  jobPayloadSchema,
  priceOf,
  publishJobEvent,
  toAppError,
  toFieldIssues,
  type Checkpoint,
  type JobEvent,
  type JobOutcome,
  type JobPayload,
  type JobResult,
  type Logger,
  type PublishOptions,
  type Region,
  type Storage,
} from '@zimage/shared';
import { DelayedError, RateLimitError, UnrecoverableError, type Job, type Queue } from 'bullmq';
import type { Redis } from 'ioredis';
import { backoffDelay, THROTTLE_BACKOFF, type BackoffPolicy } from './backoff.js';
import type { DashscopeClient } from './dashscope-client.js';
import { downloadImage, type DownloadOptions } from './image-download.js';
import { rateLimited, toRetryable, toUnrecoverable } from './to-bullmq-error.js';

export interface ProcessorDeps {
  client: Pick<DashscopeClient, 'generate'>;
  storage: Storage;
  /** Connection used to publish events. */
  redis: Redis;
  /** The generation queue, for fleet-wide rate limiting. */
  queue: Pick<Queue, 'rateLimit'>;
  logger: Logger;
  region: Region;
  download: Omit<DownloadOptions, 'signal'>;
  publish: PublishOptions;
  /** Called on account-wide errors (bad key, arrears): pauses the queue for an operator. */
  onAccountError(error: AppError): Promise<void>;
  /** Generations allowed after the first, because of expired image URLs. @defaultValue 2 */
  maxRegenerations?: number;
  /** @defaultValue THROTTLE_BACKOFF */
  throttleBackoff?: BackoffPolicy;
}

export type GenerationJob = Job<JobPayload, JobResult>;

export function createProcessor(deps: ProcessorDeps) {
  const maxRegenerations = deps.maxRegenerations ?? 2;
  // Consecutive throttles seen by this process; the backoff grows with it and resets on success.
  let throttleStreak = 0;

  async function processJob(job: GenerationJob, token?: string, signal?: AbortSignal): Promise<JobResult> {
    const parsed = jobPayloadSchema.safeParse(job.data);
    if (!parsed.success) {
      const error = new AppError('PAYLOAD_INVALID', `Job ${job.id} data is not a valid payload: ${formatFieldIssues(toFieldIssues(parsed.error))}`);
      await publishFailure(job, undefined, error);
      throw toUnrecoverable(error);
    }
    const payload = parsed.data;
    const log = deps.logger.child({ jobId: job.id, attempt: job.attemptsMade + 1, batchId: payload.batchId });
    try {
      return await run(job, payload, log, token, signal);
    } catch (error) {
      if (isBullmqControl(error)) throw error;
      throw await handleFailure(job, payload, toAppError(error), log);
    }
  }

  async function run(job: GenerationJob, payload: JobPayload, log: Logger, token?: string, signal?: AbortSignal): Promise<JobResult> {
    let checkpoint: Checkpoint = payload.checkpoint ?? { regenerations: 0 };

    if (!checkpoint.generated) {
      if (payload.deadline !== undefined && Date.now() >= payload.deadline) {
        await expire(job, payload, log);
      }
      const started = Date.now();
      const output = await deps.client.generate({
        prompt: payload.prompt,
        width: payload.width,
        height: payload.height,
        seed: payload.seed,
        promptExtend: payload.promptExtend,
        signal,
      });
      throttleStreak = 0;
      checkpoint = {
        ...checkpoint,
        generated: {
          imageUrl: output.imageUrl,
          requestId: output.requestId,
          usedPrompt: output.usedPrompt,
          width: output.width ?? payload.width,
          height: output.height ?? payload.height,
          at: Date.now(),
          generateMs: Date.now() - started,
        },
      };
      // The image is paid for from here on: record it before anything else can fail.
      await job.updateData({ ...payload, checkpoint });
      log.debug({ requestId: output.requestId, generateMs: checkpoint.generated?.generateMs }, 'Generated image');
    } else {
      log.info({ requestId: checkpoint.generated.requestId }, 'Resuming from the generated image; no new upstream call');
    }
    const generated = checkpoint.generated;
    if (!generated) throw new AppError('INTERNAL', 'checkpoint lost after generation');

    const downloadStarted = Date.now();
    let image;
    try {
      image = await downloadImage(generated.imageUrl, generated, { ...deps.download, signal });
    } catch (error) {
      const appError = toAppError(error);
      if (appError.code !== 'IMAGE_URL_EXPIRED') throw appError;
      const regenerations = checkpoint.regenerations + 1;
      if (regenerations > maxRegenerations) {
        throw new AppError('IMAGE_URL_EXPIRED', `${appError.message}; already generated ${regenerations} times, giving up`, {
          details: { permanent: true },
        });
      }
      await job.updateData({ ...payload, checkpoint: { regenerations } });
      log.warn({ regenerations }, 'Image URL expired before download; generating again (billed again)');
      // Back to the queue without using an attempt; the next run generates again.
      await job.moveToDelayed(Date.now(), token);
      throw new DelayedError();
    }
    const downloadMs = Date.now() - downloadStarted;

    const storeStarted = Date.now();
    const metadata: Record<string, string> = { ...payload.metadata, 'zimage-job-id': String(job.id) };
    if (generated.requestId) metadata['zimage-request-id'] = generated.requestId;
    const stored = await deps.storage.put({ key: payload.key, body: image.bytes, sha256: image.sha256, metadata });
    const storeMs = Date.now() - storeStarted;

    const now = Date.now();
    const result: JobResult = {
      jobId: String(job.id),
      key: stored.key,
      url: stored.url,
      bytes: stored.bytes,
      sha256: image.sha256,
      width: image.width,
      height: image.height,
      usedPrompt: generated.usedPrompt,
      requestId: generated.requestId,
      region: deps.region,
      attempts: job.attemptsMade + 1,
      regenerations: checkpoint.regenerations,
      storageSkipped: stored.skipped,
      estimatedCostUsd: priceOf(deps.region, payload.promptExtend) * (1 + checkpoint.regenerations),
      timings: {
        queuedMs: Math.max(0, (job.processedOn ?? now) - job.timestamp),
        generateMs: generated.generateMs,
        downloadMs,
        storeMs,
        totalMs: now - job.timestamp,
      },
      completedAt: new Date(now).toISOString(),
    };
    const event: JobEvent = {
      id: eventIdFor('job.succeeded', String(job.id)),
      version: 1,
      type: 'job.succeeded',
      timestamp: result.completedAt,
      data: { jobId: String(job.id), batchId: payload.batchId, metadata: payload.metadata, result },
    };
    await publish(event, 'succeeded', { jobId: String(job.id), line: payload.line, rowKey: payload.rowKey, status: 'succeeded', key: result.key, sha256: result.sha256 });
    log.info({ key: result.key, bytes: result.bytes, ms: result.timings.totalMs }, `Stored ${result.key}`);
    return result;
  }

  async function expire(job: GenerationJob, payload: JobPayload, log: Logger): Promise<never> {
    const deadline = new Date(payload.deadline ?? 0).toISOString();
    const event: JobEvent = {
      id: eventIdFor('job.expired', String(job.id)),
      version: 1,
      type: 'job.expired',
      timestamp: new Date().toISOString(),
      data: { jobId: String(job.id), batchId: payload.batchId, metadata: payload.metadata, deadline },
    };
    await publish(event, 'expired', { jobId: String(job.id), line: payload.line, rowKey: payload.rowKey, status: 'expired', errorCode: 'JOB_EXPIRED' });
    log.info({ deadline }, 'Job expired before it started; not sent upstream');
    throw toUnrecoverable(new AppError('JOB_EXPIRED', `not started before its deadline ${deadline}; never sent upstream`));
  }

  async function handleFailure(job: GenerationJob, payload: JobPayload, error: AppError, log: Logger): Promise<Error> {
    const permanent = error.details['permanent'] === true;
    switch (permanent ? 'never' : error.retry) {
      case 'throttle': {
        throttleStreak += 1;
        const delay = backoffDelay(throttleStreak, deps.throttleBackoff ?? THROTTLE_BACKOFF, error.retryAfterMs);
        // Expected under load: info, not warn. The emulator's stats and the batch summary count them.
        log.info({ code: error.code, upstreamCode: error.details['upstreamCode'], delayMs: delay }, 'Throttled; the queue waits');
        await deps.queue.rateLimit(delay);
        return rateLimited();
      }
      case 'account':
        await deps.onAccountError(error);
        return rateLimited();
      case 'never':
        await publishFailure(job, payload, error);
        log.warn({ err: error }, `Failed permanently: ${error.code}`);
        return toUnrecoverable(error);
      case 'transient': {
        const attempts = job.opts.attempts ?? 1;
        const final = job.attemptsMade + 1 >= attempts;
        if (final) await publishFailure(job, payload, error);
        log.warn({ err: error, final }, `Attempt ${job.attemptsMade + 1} of ${attempts} failed: ${error.code}`);
        return toRetryable(error);
      }
    }
  }

  async function publishFailure(job: GenerationJob, payload: JobPayload | undefined, error: AppError): Promise<void> {
    await publishFailedEvent(deps, job, payload, error);
  }

  async function publish(event: JobEvent, outcome: JobOutcome, manifest: Parameters<typeof publishJobEvent>[3]) {
    await publishJobEvent(deps.redis, event, outcome, manifest, deps.publish);
  }

  return processJob;
}

/** Publishes `job.failed` (idempotent: the same id is only ever published once). */
export async function publishFailedEvent(
  deps: Pick<ProcessorDeps, 'redis' | 'publish'>,
  job: GenerationJob,
  payload: JobPayload | undefined,
  error: AppError,
): Promise<void> {
  const data = job.data as Partial<JobPayload> | undefined;
  const batchId = payload?.batchId ?? (typeof data?.batchId === 'string' ? data.batchId : undefined);
  const event: JobEvent = {
    id: eventIdFor('job.failed', String(job.id)),
    version: 1,
    type: 'job.failed',
    timestamp: new Date().toISOString(),
    data: {
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
    },
  };
  await publishJobEvent(
    deps.redis,
    event,
    'failed',
    { jobId: String(job.id), line: payload?.line, rowKey: payload?.rowKey, status: 'failed', errorCode: error.code },
    deps.publish,
  );
}

/** Reads our code back from a BullMQ failedReason ("UPSTREAM_INTERNAL: ..."). */
export function errorFromFailedReason(reason: string | undefined): AppError {
  const match = /^([A-Z][A-Z0-9_]+): ([\s\S]*)$/.exec(reason ?? '');
  const code = match?.[1];
  if (code && code in ERROR_CATALOGUE) return new AppError(code as keyof typeof ERROR_CATALOGUE, match?.[2] ?? '');
  return new AppError('INTERNAL', reason || 'failed without a reason');
}

function isBullmqControl(error: unknown): boolean {
  return error instanceof DelayedError || error instanceof RateLimitError || error instanceof UnrecoverableError;
}
