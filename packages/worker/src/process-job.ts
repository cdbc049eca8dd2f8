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
  type Storage,
} from '@zimage/shared';
import { DelayedError, RateLimitError, UnrecoverableError, type Job } from 'bullmq';
import type { Redis } from 'ioredis';
import type { DashscopeClient } from './dashscope-client.js';
import type { CallOutcome, Governor } from './governor/governor.js';
import { downloadImage, type DownloadOptions } from './image-download.js';
import { toRetryable, toUnrecoverable } from './to-bullmq-error.js';

export interface ProcessorDeps {
  /** Hands out upstream calls at each account's pace. */
  governor: Pick<Governor, 'acquire' | 'report' | 'snapshot'>;
  /** One client per account id. */
  clients: ReadonlyMap<string, Pick<DashscopeClient, 'generate'>>;
  storage: Storage;
  /** Connection used to publish events. */
  redis: Redis;
  logger: Logger;
  download: Omit<DownloadOptions, 'signal'>;
  publish: PublishOptions;
  /** Called when every account has an account-wide error (bad key, arrears): pauses the queue. */
  onAccountError(error: AppError): Promise<void>;
  /** Generations allowed after the first, because of expired image URLs. @defaultValue 2 */
  maxRegenerations?: number;
}

/** A throttled or re-routed job waits this long (plus jitter) before it is picked up again. */
const REQUEUE_DELAY_MS = 100;

export type GenerationJob = Job<JobPayload, JobResult>;

export function createProcessor(deps: ProcessorDeps) {
  const maxRegenerations = deps.maxRegenerations ?? 2;

  async function processJob(job: GenerationJob, token?: string, signal?: AbortSignal): Promise<JobResult> {
    const parsed = jobPayloadSchema.safeParse(job.data);
    if (!parsed.success) {
      const error = new AppError('PAYLOAD_INVALID', `Job ${job.id} data is not a valid payload: ${formatFieldIssues(toFieldIssues(parsed.error, job.data))}`);
      await publishFailure(job, undefined, error);
      throw toUnrecoverable(error);
    }
    const payload = parsed.data;
    const log = deps.logger.child({ jobId: job.id, attempt: job.attemptsMade + 1, batchId: payload.batchId });
    try {
      return await run(job, payload, log, token, signal);
    } catch (error) {
      if (isBullmqControl(error)) throw error;
      throw await handleFailure(job, payload, toAppError(error), log, token);
    }
  }

  async function run(job: GenerationJob, payload: JobPayload, log: Logger, token?: string, signal?: AbortSignal): Promise<JobResult> {
    let checkpoint: Checkpoint = payload.checkpoint ?? { regenerations: 0 };

    if (!checkpoint.generated) {
      if (payload.deadline !== undefined && Date.now() >= payload.deadline) {
        await expire(job, payload, log);
      }
      const lease = await deps.governor.acquire(signal);
      // The wait for a slot may outlast the deadline: then the call is never made.
      if (payload.deadline !== undefined && Date.now() >= payload.deadline) {
        await expire(job, payload, log);
      }
      const { account } = lease;
      const client = deps.clients.get(account.id);
      if (!client) throw new AppError('INTERNAL', `no client for account ${account.id}`);
      const started = Date.now();
      let output;
      try {
        output = await client.generate({
          prompt: payload.prompt,
          width: payload.width,
          height: payload.height,
          seed: payload.seed,
          promptExtend: payload.promptExtend,
          signal,
        });
      } catch (error) {
        await deps.governor.report(account.id, outcomeOf(toAppError(error)));
        throw error;
      }
      await deps.governor.report(account.id, { kind: 'ok', latencyMs: Date.now() - started });
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
          accountId: account.id,
          region: account.region,
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
      region: generated.region ?? 'singapore',
      accountId: generated.accountId,
      attempts: job.attemptsMade + 1,
      regenerations: checkpoint.regenerations,
      storageSkipped: stored.skipped,
      estimatedCostUsd: priceOf(generated.region ?? 'singapore', payload.promptExtend) * (1 + checkpoint.regenerations),
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

  async function handleFailure(job: GenerationJob, payload: JobPayload, error: AppError, log: Logger, token?: string): Promise<Error> {
    const permanent = error.details['permanent'] === true;
    switch (permanent ? 'never' : error.retry) {
      case 'throttle':
        // The governor has already slowed the account down; the job goes back to the queue
        // without using an attempt. Expected under load: info, not warn.
        log.info({ code: error.code, upstreamCode: error.details['upstreamCode'] }, 'Throttled; back to the queue');
        return requeue(job, token);
      case 'account': {
        const accounts = await deps.governor.snapshot();
        if (accounts.every((a) => a.disabledReason !== null)) await deps.onAccountError(error);
        else log.error({ err: error }, `Account disabled: ${error.code}; its work moves to the other accounts`);
        return requeue(job, token);
      }
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

/** Back to the queue without using an attempt (BullMQ's DelayedError contract). */
async function requeue(job: GenerationJob, token: string | undefined): Promise<DelayedError> {
  await job.moveToDelayed(Date.now() + REQUEUE_DELAY_MS + Math.floor(Math.random() * REQUEUE_DELAY_MS * 2), token);
  return new DelayedError();
}

/** What a failed call tells the governor about the account's pace. */
function outcomeOf(error: AppError): CallOutcome {
  if (error.retry === 'throttle') return { kind: 'throttled', retryAfterMs: error.retryAfterMs };
  if (error.code === 'NETWORK_TIMEOUT') return { kind: 'timeout' };
  if (error.retry === 'account') return { kind: 'account-error', reason: `${error.code}: ${error.message}` };
  return { kind: 'error' };
}

function isBullmqControl(error: unknown): boolean {
  return error instanceof DelayedError || error instanceof RateLimitError || error instanceof UnrecoverableError;
}
