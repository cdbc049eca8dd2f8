/**
 * The processor: validate the payload → generate (one upstream call) → download → store → emit.
 *
 * Each step leaves a checkpoint on the job, so a retry resumes where the last attempt stopped. The
 * rule that matters most: once the upstream has returned an image (and billed it), no retry calls
 * the API again — unless the image URL has expired, which is the only way to get the image back.
 * Failures after that point do not use the job's attempts either: the paid image is worth waiting
 * for while storage or the network recovers.
 */
import {
  AppError,
  cancelRequestKey,
  formatFieldIssues,
  jobPayloadSchema,
  priceOf,
  recordUpstreamCall,
  toAppError,
  toFieldIssues,
  type Checkpoint,
  type JobPayload,
  type JobResult,
  type Logger,
  type PublishOptions,
  type Storage,
} from '@zimage/shared';
import type { Redis } from 'ioredis';
import { backoffDelay, RETRY_BACKOFF, type BackoffPolicy } from './backoff.js';
import type { DashscopeClient } from './dashscope-client.js';
import type { GenerationJob } from './generation-job.js';
import type { CallOutcome, Governor, Lease } from './governor/governor.js';
import { downloadImage, type DownloadOptions } from './image-download.js';
import { publishExpired, publishFailed, publishSucceeded } from './job-events.js';
import { isBullmqControl, requeue, toRetryable, toUnrecoverable } from './to-bullmq-error.js';

export type { GenerationJob } from './generation-job.js';

export interface ProcessorDeps {
  /** Hands out upstream calls at each account's pace. */
  governor: Pick<Governor, 'acquire' | 'report' | 'release' | 'snapshot'>;
  /** One client per account id. */
  clients: ReadonlyMap<string, Pick<DashscopeClient, 'generate'>>;
  storage: Storage;
  /** Connection used to publish events. */
  redis: Redis;
  logger: Logger;
  download: Omit<DownloadOptions, 'signal'>;
  publish: PublishOptions;
  /** Pauses the whole queue for an operator, recording why. */
  pauseQueue(error: AppError): Promise<void>;
  /** Generations allowed after the first, because of expired image URLs. @defaultValue 2 */
  maxRegenerations?: number;
  /** Retries of download/store after the image was paid for (none uses an attempt). @defaultValue 20 */
  maxPostGenerationRetries?: number;
  /** Backoff between those retries. @defaultValue RETRY_BACKOFF (1 s doubling to 60 s) */
  postGenerationBackoff?: BackoffPolicy;
}

/** The abort reason the worker gives BullMQ's `cancelJob` when the API cancels an active job. */
export const CANCEL_REASON = 'zimage:cancelled';

/** A throttled or re-routed job waits this long (plus up to twice as much jitter). */
const REQUEUE_DELAY_MS = 100;
/** When an image URL carries no `Expires`, the documented lifetime. */
const DOCUMENTED_URL_LIFETIME_MS = 24 * 3600 * 1000;

export function createProcessor(deps: ProcessorDeps) {
  const maxRegenerations = deps.maxRegenerations ?? 2;
  const maxPostRetries = deps.maxPostGenerationRetries ?? 20;
  const sink = { redis: deps.redis, publish: deps.publish };

  return async function processJob(job: GenerationJob, token?: string, signal?: AbortSignal): Promise<JobResult> {
    const parsed = jobPayloadSchema.safeParse(job.data);
    if (!parsed.success) {
      const error = new AppError('PAYLOAD_INVALID', `Job ${job.id} data is not a valid payload: ${formatFieldIssues(toFieldIssues(parsed.error, job.data))}`);
      await publishFailed(sink, job, undefined, error);
      throw toUnrecoverable(error);
    }
    const payload = parsed.data;
    const log = deps.logger.child({ jobId: job.id, attempt: job.attemptsMade + 1, batchId: payload.batchId });
    try {
      return await run(job, payload, log, token, signal);
    } catch (error) {
      if (isBullmqControl(error)) throw error;
      // An abort we asked for (DELETE /v1/jobs/:id) is a cancellation, not a network failure.
      if (signal?.aborted && signal.reason === CANCEL_REASON) throw await cancelled(job, payload, log);
      throw await handleFailure(job, payload, toAppError(error), log, token);
    }
  };

  /** Fleet-wide upstream metrics; a Redis hiccup here must not fail a paid generation. */
  async function recordCall(region: string, code: string, latencyMs: number): Promise<void> {
    await recordUpstreamCall(deps.redis, deps.publish.prefix, region, code, latencyMs).catch(() => {});
  }

  /** The API asked to cancel this job: it ends now, counted as cancelled in its batch. */
  async function throwIfCancelRequested(job: GenerationJob, payload: JobPayload, log: Logger): Promise<void> {
    if ((await deps.redis.exists(cancelRequestKey(deps.publish.prefix, String(job.id)))) === 1) throw await cancelled(job, payload, log);
  }

  async function cancelled(job: GenerationJob, payload: JobPayload, log: Logger): Promise<Error> {
    const error = new AppError('JOB_CANCELLED', 'cancelled on request; no further upstream call is made');
    await publishFailed(sink, job, payload, error, 'cancelled');
    log.info('Cancelled on request');
    return toUnrecoverable(error);
  }

  /** Saves the checkpoint, keeping whatever else is in the job's data (fields newer code wrote). */
  async function saveCheckpoint(job: GenerationJob, checkpoint: Checkpoint): Promise<void> {
    await job.updateData({ ...job.data, checkpoint });
  }

  async function run(job: GenerationJob, payload: JobPayload, log: Logger, token?: string, signal?: AbortSignal): Promise<JobResult> {
    let checkpoint: Checkpoint = payload.checkpoint ?? { regenerations: 0 };
    let lease: Lease | undefined;

    if (!checkpoint.generated) {
      await throwIfCancelRequested(job, payload, log);
      if (isPast(payload.deadline)) await expire(job, payload, log);
      // BullMQ priority 101 is priority 0 (bulk); anything lower was submitted with a priority.
      const urgent = job.opts.priority !== undefined && job.opts.priority < 101;
      lease = await deps.governor.acquire(signal, urgent);
      // The wait for a slot may outlast the deadline, or a cancel arrive: then the call is never made.
      if (isPast(payload.deadline)) await expire(job, payload, log);
      await throwIfCancelRequested(job, payload, log);
      const { account } = lease;
      const client = deps.clients.get(account.id);
      if (!client) throw new AppError('INTERNAL', `no client for account ${account.id}`);
      const started = Date.now();
      let output;
      try {
        output = await client.generate({ prompt: payload.prompt, width: payload.width, height: payload.height, seed: payload.seed, promptExtend: payload.promptExtend, signal });
      } catch (error) {
        const appError = toAppError(error);
        await deps.governor.report(account.id, outcomeOf(appError));
        await recordCall(account.region, String(appError.details['upstreamCode'] ?? appError.code), Date.now() - started);
        throw error;
      }
      await deps.governor.report(account.id, { kind: 'ok', latencyMs: Date.now() - started });
      // Not awaited before the checkpoint: the paid image is recorded first; the metric alongside.
      const recorded = recordCall(account.region, 'ok', Date.now() - started);
      checkpoint = {
        regenerations: checkpoint.regenerations,
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
      await saveCheckpoint(job, checkpoint);
      await recorded;
      log.debug({ requestId: output.requestId, account: account.id, generateMs: Date.now() - started }, 'Generated image');
    } else {
      log.info({ requestId: checkpoint.generated.requestId }, 'Resuming from the generated image; no new upstream call');
    }
    const generated = checkpoint.generated;
    if (!generated) throw new AppError('INTERNAL', 'checkpoint lost after generation');

    try {
      const downloadStarted = Date.now();
      const image = await downloadImage(generated.imageUrl, generated, { ...deps.download, signal });
      const downloadMs = Date.now() - downloadStarted;

      const storeStarted = Date.now();
      const metadata: Record<string, string> = { ...payload.metadata, 'zimage-job-id': String(job.id) };
      if (generated.requestId) metadata['zimage-request-id'] = generated.requestId;
      const stored = await deps.storage.put({ key: payload.key, body: image.bytes, sha256: image.sha256, metadata });
      const storeMs = Date.now() - storeStarted;

      const now = Date.now();
      const region = generated.region ?? 'singapore';
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
        region,
        accountId: generated.accountId,
        attempts: job.attemptsMade + 1,
        regenerations: checkpoint.regenerations,
        storageSkipped: stored.skipped,
        estimatedCostUsd: priceOf(region, payload.promptExtend) * (1 + checkpoint.regenerations),
        timings: {
          queuedMs: Math.max(0, (job.processedOn ?? now) - job.timestamp),
          generateMs: generated.generateMs,
          downloadMs,
          storeMs,
          totalMs: now - job.timestamp,
        },
        completedAt: new Date(now).toISOString(),
      };
      await publishSucceeded(sink, job, payload, result);
      if (lease) deps.governor.release(lease);
      log.info({ key: result.key, bytes: result.bytes, ms: result.timings.totalMs }, `Stored ${result.key}`);
      return result;
    } catch (error) {
      if (isBullmqControl(error)) throw error;
      throw await afterGenerationFailure(job, payload, checkpoint, toAppError(error), log, token);
    }
  }

  /**
   * A failure after the image was paid for. Never uses an attempt: the job waits and tries the
   * download/store again, up to `maxPostRetries` times. A 403/404 from the image URL is an expired
   * URL only once its `Expires` has passed (or the retries are spent): then, and only then, the
   * image is generated again.
   */
  async function afterGenerationFailure(job: GenerationJob, payload: JobPayload, checkpoint: Checkpoint, error: AppError, log: Logger, token?: string): Promise<Error> {
    const generated = checkpoint.generated;
    if (!generated || (error.retry !== 'transient' && error.code !== 'IMAGE_URL_EXPIRED')) return handleFailure(job, payload, error, log, token);
    const failures = (checkpoint.postFailures ?? 0) + 1;
    const linkGone = error.code === 'IMAGE_URL_EXPIRED';
    const expired = linkGone && (urlExpired(generated.imageUrl, generated.at) || failures > maxPostRetries);

    if (expired) {
      const regenerations = checkpoint.regenerations + 1;
      if (regenerations > maxRegenerations) {
        return handleFailure(job, payload, new AppError('IMAGE_URL_EXPIRED', `${error.message}; generated ${regenerations} times already, giving up`), log, token, true);
      }
      await saveCheckpoint(job, { regenerations });
      log.warn({ regenerations }, 'Image URL expired before it was stored; generating again (billed again)');
      return requeue(job, token, 0);
    }
    if (failures > maxPostRetries) {
      return handleFailure(job, payload, new AppError(error.code, `${error.message} (after ${maxPostRetries} retries of the paid image)`, { cause: error }), log, token, true);
    }
    await saveCheckpoint(job, { ...checkpoint, postFailures: failures });
    const delay = backoffDelay(failures, deps.postGenerationBackoff ?? RETRY_BACKOFF, error.retryAfterMs);
    log.warn({ err: error, failures, delayMs: delay }, `Storing the paid image failed (${error.code}); retrying in ${delay} ms without a new generation`);
    return requeue(job, token, delay);
  }

  async function expire(job: GenerationJob, payload: JobPayload, log: Logger): Promise<never> {
    const deadline = new Date(payload.deadline ?? 0).toISOString();
    await publishExpired(sink, job, payload, deadline);
    log.info({ deadline }, 'Job expired before it started; not sent upstream');
    throw toUnrecoverable(new AppError('JOB_EXPIRED', `not started before its deadline ${deadline}; never sent upstream`));
  }

  async function handleFailure(job: GenerationJob, payload: JobPayload, error: AppError, log: Logger, token?: string, final = false): Promise<Error> {
    switch (final ? 'never' : error.retry) {
      case 'throttle':
        // The governor has already slowed the account down. Expected under load: info, not warn.
        log.info({ code: error.code, upstreamCode: error.details['upstreamCode'] }, 'Throttled; back to the queue');
        return requeue(job, token, jittered(REQUEUE_DELAY_MS));
      case 'account': {
        const accounts = await deps.governor.snapshot();
        if (accounts.every((a) => a.disabledReason !== null)) await deps.pauseQueue(error);
        else log.error({ err: error }, `Account disabled (${error.code}); its work moves to the other accounts`);
        return requeue(job, token, jittered(REQUEUE_DELAY_MS));
      }
      case 'pause':
        await deps.pauseQueue(error);
        return requeue(job, token, 0);
      case 'never':
        await publishFailed(sink, job, payload, error);
        log.warn({ err: error }, `Failed permanently: ${error.code}`);
        return toUnrecoverable(error);
      case 'transient': {
        const attempts = job.opts.attempts ?? 1;
        const last = job.attemptsMade + 1 >= attempts;
        if (last) await publishFailed(sink, job, payload, error);
        log.warn({ err: error, final: last }, `Attempt ${job.attemptsMade + 1} of ${attempts} failed: ${error.code}`);
        return toRetryable(error);
      }
    }
  }
}

/** What a failed call tells the governor about the account's pace. */
function outcomeOf(error: AppError): CallOutcome {
  if (error.retry === 'throttle') {
    return { kind: 'throttled', retryAfterMs: error.retryAfterMs, ramp: error.details['upstreamCode'] === 'Throttling.BurstRate' };
  }
  if (error.code === 'NETWORK_TIMEOUT') return { kind: 'timeout' };
  if (error.retry === 'account') return { kind: 'account-error', reason: `${error.code}: ${error.message}` };
  return { kind: 'error' };
}

/** Past its `Expires` (epoch seconds, OSS-style), or past the documented 24 h without one. */
export function urlExpired(imageUrl: string, generatedAt: number, now = Date.now()): boolean {
  let expires: number | undefined;
  try {
    const value = new URL(imageUrl).searchParams.get('Expires');
    if (value && /^\d+$/.test(value)) expires = Number(value) * 1000;
  } catch {
    // an unparseable URL falls back to the documented lifetime
  }
  return now >= (expires ?? generatedAt + DOCUMENTED_URL_LIFETIME_MS);
}

function isPast(deadline: number | undefined): boolean {
  return deadline !== undefined && Date.now() >= deadline;
}

function jittered(ms: number): number {
  return ms + Math.floor(Math.random() * ms * 2);
}
