/**
 * The processor: validate the payload → generate (one upstream call) → download → store → emit.
 *
 * Each step returns a `StepOutcome`; `settleOutcome` alone turns it into events and BullMQ control
 * flow. The generated image is checkpointed on the job the moment the API returns it, so a retry
 * resumes from the download and never pays again — unless the image's link has expired, the only
 * way to get it back. After that point nothing gives the image up: storage and network failures
 * are retried with backoff and without a limit (storage health stops the fleet meanwhile), and a
 * key storage will never accept parks the image for an operator.
 *
 * Retries live in one layer, this one: BullMQ's attempts for transient failures before payment,
 * delayed re-queues (no attempt used) for everything after it; the upstream client and the S3
 * client make one request per call.
 */
import {
  AppError,
  FAIR_HOLD_DELAY_MS,
  formatFieldIssues,
  isPriorityJob,
  jobPayloadSchema,
  priceOf,
  recordUpstreamCall,
  REGIONS,
  MIN_PRIORITY,
  renderHash,
  takeTurn,
  toAppError,
  toBullPriority,
  toFieldIssues,
  type Checkpoint,
  type JobResult,
  type Logger,
  type PublishOptions,
  type Storage,
} from '@zimage/shared';
import type { Redis } from 'ioredis';
import { afterPaymentDecision } from './after-payment-decision.js';
import { backoffDelay, RETRY_BACKOFF, type BackoffPolicy } from './backoff.js';
import type { BudgetGate } from './budget-gate.js';
import { billingOfFailure } from './call-billing.js';
import { cancelRequested } from './cancel-requested.js';
import { countMaybeBilled } from './count-maybe-billed.js';
import { outageSignature, type CircuitBreaker } from './circuit-breaker.js';
import type { DashscopeClient } from './dashscope-client.js';
import type { GenerationJob } from './generation-job.js';
import type { CallOutcome, Governor, Lease } from './governor/governor.js';
import { downloadImage, type DownloadOptions } from './image-download.js';
import { checkpointOf, type JobContext } from './job-context.js';
import { publishFailed } from './job-events.js';
import { clearParked } from './parked-jobs.js';
import { RenderCacheIndex } from './render-cache-index.js';
import { serveFromCache } from './serve-from-cache.js';
import type { QueuePause } from './queue-pause.js';
import { settleOutcome } from './settle-outcome.js';
import type { StepOutcome } from './step-outcome.js';
import type { StorageHealth } from './storage-health.js';
import { isBullmqControl, toUnrecoverable } from './to-bullmq-error.js';

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
  /** The fleet's stop switch, with its recorded reason. */
  pause: QueuePause;
  breaker: CircuitBreaker;
  storageHealth: StorageHealth;
  /** Generations allowed after the first, because of expired image URLs. @defaultValue 2 */
  maxRegenerations?: number;
  /** Backoff between retries of a paid image's download and store. @defaultValue RETRY_BACKOFF (1 s doubling to 60 s) */
  postGenerationBackoff?: BackoffPolicy;
  /** Budgets: each call reserved before it is sent, settled after; a job over a hard budget parked. */
  budgets: BudgetGate;
}

/** The abort reason the worker gives BullMQ's `cancelJob` when the API cancels an active job. */
export const CANCEL_REASON = 'zimage:cancelled';

/** The price of a request in the cheapest region: a budget that cannot fit it cannot fit the call. */
const LOWEST_PRICE = (promptExtend: boolean) => Math.min(...REGIONS.map((region) => priceOf(region, promptExtend)));

/** A throttled or re-routed job waits this long (plus up to twice as much jitter). */
const REQUEUE_DELAY_MS = 100;
/** Our clock and the image host's differing by more than this is worth a warning (URL expiry is judged by our clock). */
const CLOCK_SKEW_WARN_MS = 30_000;

export function createProcessor(deps: ProcessorDeps) {
  const maxRegenerations = deps.maxRegenerations ?? 2;
  const sink = { redis: deps.redis, publish: deps.publish };
  const renderCache = new RenderCacheIndex(deps.redis, deps.publish.prefix);

  return async function processJob(job: GenerationJob, token?: string, signal?: AbortSignal): Promise<JobResult> {
    const parsed = jobPayloadSchema.safeParse(job.data);
    if (!parsed.success) {
      const error = new AppError('PAYLOAD_INVALID', `Job ${job.id} data is not a valid payload: ${formatFieldIssues(toFieldIssues(parsed.error, job.data))}`);
      await publishFailed(sink, job, undefined, error);
      throw toUnrecoverable(error);
    }
    const payload = parsed.data;
    const ctx: JobContext = { job, token, signal, payload, log: deps.logger.child({ jobId: job.id, attempt: job.attemptsMade + 1, batchId: payload.batchId }) };
    let outcome: StepOutcome;
    try {
      outcome = await run(ctx);
    } catch (error) {
      if (isBullmqControl(error)) throw error;
      // Whatever failed (Redis mid-failover, a bug), once the image is paid for it is kept.
      outcome = ctx.paid ? await afterPayment(ctx, ctx.paid, toAppError(error)) : await beforePayment(ctx, toAppError(error));
    }
    return settleOutcome(ctx, outcome, sink);
  };

  async function run(ctx: JobContext): Promise<StepOutcome> {
    let checkpoint = checkpointOf(ctx.payload);
    let lease: Lease | undefined;
    if (checkpoint.generated) ctx.paid = checkpoint;
    if (!checkpoint.generated) {
      if (ctx.payload.cache) {
        const refused = await refuseToStart(ctx);
        if (refused) return refused;
        const cached = await serveFromCache({ storage: deps.storage, index: renderCache, storageHealth: deps.storageHealth }, ctx);
        if (cached) return cached;
      }
      const generated = await generate(ctx, checkpoint);
      if (generated.kind !== 'generated') return generated.outcome;
      ({ checkpoint, lease } = generated);
    } else {
      ctx.log.info({ requestId: checkpoint.generated.requestId }, 'Resuming from the generated image; no new upstream call');
    }
    const outcome = await store(ctx, checkpoint);
    if (outcome.kind === 'succeeded' && lease) deps.governor.release(lease);
    return outcome;
  }

  /** The one upstream call: billed when it returns an image, so that image is checkpointed first. */
  async function generate(ctx: JobContext, before: Checkpoint): Promise<{ kind: 'generated'; checkpoint: Checkpoint; lease: Lease } | { kind: 'ended'; outcome: StepOutcome }> {
    const ended = (outcome: StepOutcome) => ({ kind: 'ended' as const, outcome });
    const { payload, signal } = ctx;
    const notStarted = await refuseToStart(ctx);
    if (notStarted) return ended(notStarted);
    const overBudget = await deps.budgets.precheck(String(ctx.job.id), payload, LOWEST_PRICE(payload.promptExtend));
    if (overBudget?.kind === 'parked') return ended({ kind: 'requeue', delayMs: overBudget.delayMs, why: overBudget.why });
    // Fair share: a job back in the queue by another way than the admission (a retry's backoff,
    // a requeue, a budget's wake, a bulk retry) goes back to its lane while another tenant waits.
    // After the budget check: a job its budget parks again needs no turn.
    const bullPriority = ctx.job.opts.priority ?? toBullPriority(MIN_PRIORITY);
    if ((await takeTurn(deps.redis, deps.publish.prefix, { jobId: String(ctx.job.id), tenant: payload.tenant, bullPriority })) === 'held') {
      return ended({ kind: 'requeue', delayMs: FAIR_HOLD_DELAY_MS, why: "back in its tenant's lane until its turn" });
    }
    const lease = await deps.governor.acquire(signal, isPriorityJob(ctx.job.opts.priority));
    const { account } = lease;
    // The wait for a slot may outlast the deadline, a cancel arrive or the breaker open: then the
    // call is never made, and the lease goes back (the pace counts it in flight until reported).
    const notSent = async () => deps.governor.report(lease, { kind: 'not-sent' });
    const notCalled = await whyNotCall(ctx, account.id).catch(async (error: unknown) => {
      await notSent();
      throw error;
    });
    if (notCalled) {
      await notSent();
      return ended(notCalled);
    }
    const client = deps.clients.get(account.id);
    if (!client) {
      await notSent();
      throw new AppError('INTERNAL', `no client for account ${account.id}`);
    }
    const gate = await deps.budgets.reserve(String(ctx.job.id), payload, account.id, priceOf(account.region, payload.promptExtend)).catch(async (error: unknown) => {
      await notSent();
      throw error;
    });
    if (gate.kind === 'parked') {
      await notSent();
      return ended({ kind: 'requeue', delayMs: gate.delayMs, why: gate.why });
    }
    const started = Date.now();
    let output: Awaited<ReturnType<typeof client.generate>>;
    try {
      output = await client.generate({ prompt: payload.prompt, width: payload.width, height: payload.height, seed: payload.seed, promptExtend: payload.promptExtend, signal });
    } catch (error) {
      const appError = toAppError(error);
      const billing = billingOfFailure(appError, signal?.aborted === true);
      await deps.budgets.settle(gate, billing);
      if (billing === 'maybe') {
        await countMaybeBilled(deps.redis, deps.publish.prefix, payload.batchId, priceOf(account.region, payload.promptExtend)).catch((e: unknown) => ctx.log.warn({ err: e }, 'Could not count a maybe-billed call in its batch'));
      }
      await deps.governor.report(lease, outcomeOf(appError));
      await recordCall(account.region, String(appError.details['upstreamCode'] ?? appError.code), Date.now() - started);
      return ended(await upstreamFailure(ctx, account.id, appError));
    }
    await deps.governor.report(lease, { kind: 'ok', latencyMs: Date.now() - started });
    deps.breaker.recordSuccess(account.id);
    // Not awaited before the checkpoint: the paid image is recorded first; the metric alongside.
    const recorded = recordCall(account.region, 'ok', Date.now() - started);
    const checkpoint: Checkpoint = {
      regenerations: before.regenerations,
      generated: {
        imageUrl: output.imageUrl,
        requestId: output.requestId,
        usedPrompt: output.usedPrompt,
        width: output.width ?? payload.width,
        height: output.height ?? payload.height,
        sizeReported: output.width !== undefined && output.height !== undefined,
        at: Date.now(),
        generateMs: Date.now() - started,
        accountId: account.id,
        region: account.region,
      },
    };
    // The image is paid for from here on: record it before anything else can fail (and, should
    // that save itself fail, the failure path still knows it, in memory).
    ctx.paid = checkpoint;
    await ctx.job.updateData({ ...ctx.job.data, checkpoint });
    await Promise.all([recorded, deps.budgets.settle(gate, 'billed')]);
    ctx.log.debug({ requestId: output.requestId, account: account.id, generateMs: Date.now() - started }, 'Generated image');
    return { kind: 'generated', checkpoint, lease };
  }

  /** After the slot came: cancelled, past its deadline, or the account's breaker open. */
  async function whyNotCall(ctx: JobContext, accountId: string): Promise<StepOutcome | undefined> {
    const refused = await refuseToStart(ctx);
    if (refused) return refused;
    const admission = await deps.breaker.admit(accountId, String(ctx.job.id));
    if (admission.kind === 'wait') return { kind: 'requeue', delayMs: jittered(Math.max(REQUEUE_DELAY_MS, admission.retryInMs)), why: `account ${accountId}'s circuit breaker is open` };
    return undefined;
  }

  /** Cancelled or past its deadline: the call is never made. */
  async function refuseToStart(ctx: JobContext): Promise<StepOutcome | undefined> {
    if (await cancelRequested(deps.redis, deps.publish.prefix, ctx.job)) return cancelledOutcome();
    if (ctx.payload.deadline !== undefined && Date.now() >= ctx.payload.deadline) return { kind: 'expired', deadline: ctx.payload.deadline };
    return undefined;
  }


  /**
   * An upstream failure before any image was paid for. An outage (the same failure from different
   * jobs, in a row) opens the account's breaker; when it opens, this job goes back to the queue
   * with its attempts, and with every account's breaker open the fleet stops.
   */
  async function upstreamFailure(ctx: JobContext, accountId: string, error: AppError): Promise<StepOutcome> {
    // Our own abort (a cancel, a shutdown) says nothing about the upstream.
    if (ctx.signal?.aborted) return beforePayment(ctx, error);
    const signature = outageSignature(error.code, error.details['upstreamCode'], error.details['upstreamStatus']);
    if (signature === undefined) {
      // The upstream answered (a throttle, a rejected prompt): it is up.
      if (error.code !== 'INTERNAL') deps.breaker.recordSuccess(accountId);
      return beforePayment(ctx, error);
    }
    const opened = await deps.breaker.recordFailure(accountId, signature, String(ctx.job.id));
    const state = await deps.breaker.state(accountId);
    if (!opened && state.state === 'closed') return beforePayment(ctx, error);
    if (opened) {
      ctx.log.error({ err: error, account: accountId }, `Circuit breaker open for account ${accountId}: ${error.code} from several jobs in a row`);
      const states = await Promise.all(deps.clients.size > 0 ? [...deps.clients.keys()].map((id) => deps.breaker.state(id)) : []);
      if (states.every((s) => s.state !== 'closed')) {
        await deps.pause.pause(new AppError('UPSTREAM_OUTAGE', `every account's circuit breaker is open; the last failure: ${error.message}`, { cause: error, details: error.details }));
      }
    }
    return { kind: 'requeue', delayMs: jittered(1_000), why: `account ${accountId}'s circuit breaker is open (${error.code})` };
  }

  /** A failure before any image was paid for, by the error's retry policy. */
  async function beforePayment(ctx: JobContext, error: AppError): Promise<StepOutcome> {
    // An abort we asked for (DELETE /v1/jobs/:id) is a cancellation, not a network failure.
    if (ctx.signal?.aborted && ctx.signal.reason === CANCEL_REASON) return cancelledOutcome();
    switch (error.retry) {
      case 'throttle':
        // The governor has already slowed the account down. Expected under load: info, not warn.
        ctx.log.info({ code: error.code, upstreamCode: error.details['upstreamCode'] }, 'Throttled; back to the queue');
        return { kind: 'requeue', delayMs: jittered(REQUEUE_DELAY_MS), why: 'throttled' };
      case 'account': {
        const accounts = await deps.governor.snapshot();
        if (accounts.every((a) => a.disabledReason !== null)) await deps.pause.pause(error);
        else ctx.log.error({ err: error }, `Account disabled (${error.code}); its work moves to the other accounts`);
        return { kind: 'requeue', delayMs: jittered(REQUEUE_DELAY_MS), why: `account disabled (${error.code})` };
      }
      case 'pause':
        await deps.pause.pause(error);
        return { kind: 'requeue', delayMs: 0, why: `queue paused (${error.code})` };
      case 'never':
        return { kind: 'failed', error, as: 'failed' };
      case 'transient':
        return { kind: 'retry', error };
    }
  }

  /** Download, store, result: every failure here keeps the paid image. */
  async function store(ctx: JobContext, checkpoint: Checkpoint): Promise<StepOutcome> {
    const generated = checkpoint.generated;
    if (!generated) throw new AppError('INTERNAL', 'checkpoint lost after generation');
    const { job, payload } = ctx;
    try {
      const downloadStarted = Date.now();
      const image = await downloadImage(generated.imageUrl, { width: generated.width, height: generated.height, sizeReported: generated.sizeReported }, { ...deps.download, signal: ctx.signal });
      const downloadMs = Date.now() - downloadStarted;
      warnOnClockSkew(ctx.log, image.serverDateMs);

      const storeStarted = Date.now();
      const metadata: Record<string, string> = { ...payload.metadata, 'zimage-job-id': String(job.id) };
      if (generated.requestId) metadata['zimage-request-id'] = generated.requestId;
      const stored = await deps.storage.put({ key: payload.key, body: image.bytes, sha256: image.sha256, metadata });
      const storeMs = Date.now() - storeStarted;
      deps.storageHealth.recordSuccess();
      if (checkpoint.postFailures || checkpoint.regenerations) await clearParked(deps.redis, deps.publish.prefix, String(job.id));

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
      ctx.log.info({ key: result.key, bytes: result.bytes, ms: result.timings.totalMs }, `Stored ${result.key}`);
      if (payload.cache) await rememberRender(ctx, result, generated.at);
      return { kind: 'succeeded', result };
    } catch (error) {
      if (isBullmqControl(error)) throw error;
      return afterPayment(ctx, checkpoint, toAppError(error));
    }
  }

  /** A failure after the image was paid for. Never uses an attempt; never gives the image up. */
  async function afterPayment(ctx: JobContext, checkpoint: Checkpoint, error: AppError): Promise<StepOutcome> {
    const postFailures = (checkpoint.postFailures ?? 0) + 1;
    const parked = { ...checkpoint, postFailures };
    const backoff = () => backoffDelay(postFailures, deps.postGenerationBackoff ?? RETRY_BACKOFF, error.retryAfterMs);
    // Cancelled while storing (or told to stop): the image is paid for, so it is stored after all.
    if (ctx.signal?.aborted) return { kind: 'park', error, checkpoint: parked, delayMs: 0, forOperator: false };
    const decision = afterPaymentDecision(error, checkpoint, maxRegenerations);
    switch (decision.kind) {
      case 'regenerate':
        ctx.log.warn({ err: error, regenerations: checkpoint.regenerations + 1 }, 'Image link expired before it was stored; generating again (billed again)');
        await ctx.job.updateData({ ...ctx.job.data, checkpoint: { regenerations: checkpoint.regenerations + 1 } });
        return { kind: 'requeue', delayMs: 0, why: 'image link expired: generating again' };
      case 'give-up':
        return { kind: 'failed', error: new AppError('IMAGE_URL_EXPIRED', `${error.message}; ${decision.reason}`, { cause: error, details: error.details }), as: 'failed' };
      case 'park-for-operator':
        return { kind: 'park', error, checkpoint: parked, delayMs: 0, forOperator: true };
      case 'pause':
        await deps.pause.pause(error);
        return { kind: 'park', error, checkpoint: parked, delayMs: 0, forOperator: false };
      case 'storage-failure':
        await deps.storageHealth.recordFailure(error);
        return { kind: 'park', error, checkpoint: parked, delayMs: backoff(), forOperator: false };
      case 'retry':
        return { kind: 'park', error, checkpoint: parked, delayMs: backoff(), forOperator: false };
    }
  }

  /** Offers a stored image to later jobs of the same request. Best effort: the job has succeeded. */
  async function rememberRender(ctx: JobContext, result: JobResult, generatedAt: number): Promise<void> {
    const cache = ctx.payload.cache;
    const hash = renderHash(ctx.payload);
    if (!cache || hash === undefined) return;
    const entry = {
      key: result.key,
      sha256: result.sha256,
      bytes: result.bytes,
      width: result.width,
      height: result.height,
      region: result.region,
      ...(result.requestId ? { requestId: result.requestId } : {}),
      jobId: result.jobId,
      costUsd: priceOf(result.region, false),
      at: generatedAt,
    };
    // The TTL counts from the generation, as the docs say; an image generated long ago (a parked
    // job stored late) is offered for what is left of it.
    const ttlMs = cache.ttlMs - Math.max(0, Date.now() - generatedAt);
    if (ttlMs <= 0) return;
    await renderCache.remember(cache.namespace, hash, entry, ttlMs).catch((error: unknown) => {
      ctx.log.warn({ err: toAppError(error) }, 'Could not record the image in the render cache; later jobs will generate it');
    });
  }

  /** Fleet-wide upstream metrics; a Redis hiccup here must not fail a paid generation. */
  async function recordCall(region: string, code: string, latencyMs: number): Promise<void> {
    await recordUpstreamCall(deps.redis, deps.publish.prefix, region, code, latencyMs).catch(() => {});
  }
}

function cancelledOutcome(): StepOutcome {
  return { kind: 'failed', error: new AppError('JOB_CANCELLED', 'cancelled on request; no further upstream call is made'), as: 'cancelled' };
}

/** What a failed call tells the governor about the account's pace. */
function outcomeOf(error: AppError): CallOutcome {
  if (error.retry === 'throttle') {
    const code = error.details['upstreamCode'];
    // `Throttling.RateQuota` names a rate ("RPS or RPM"), `Throttling.BurstRate` a ramp; plain `Throttling` names nothing.
    return { kind: 'throttled', retryAfterMs: error.retryAfterMs, ramp: code === 'Throttling.BurstRate', unnamed: code === 'Throttling' };
  }
  if (error.code === 'NETWORK_TIMEOUT') return { kind: 'timeout' };
  if (error.retry === 'account') return { kind: 'account-error', reason: `${error.code}: ${error.message}` };
  return { kind: 'error' };
}

let skewWarnedAt = 0;

/** Expiry is judged by our clock against the link's `Expires`: a clock that is off makes that wrong. Once a minute at most. */
function warnOnClockSkew(log: Logger, serverDateMs: number | undefined): void {
  if (serverDateMs === undefined) return;
  const skewMs = Date.now() - serverDateMs;
  if (Math.abs(skewMs) <= CLOCK_SKEW_WARN_MS || Date.now() - skewWarnedAt < 60_000) return;
  skewWarnedAt = Date.now();
  log.warn({ skewMs }, `This host's clock is ${Math.round(skewMs / 1000)} s off the image host's; link expiry is judged by it`);
}

function jittered(ms: number): number {
  return ms + Math.floor(Math.random() * ms * 2);
}
