/**
 * The one place where a run's `StepOutcome` becomes events and BullMQ control flow:
 * - `succeeded` → `job.succeeded`, and the result is returned (BullMQ completes the job);
 * - `failed` / `expired` → their event, then `UnrecoverableError` (no attempt left is used);
 * - `retry` → a plain Error: BullMQ counts an attempt and retries with the worker's backoff
 *   (Retry-After honoured); on the last attempt it is `failed` instead;
 * - `requeue` → "delayed" for `delayMs`, attempts intact (BullMQ's DelayedError contract);
 * - `park` → the checkpoint is saved, then "delayed" like a requeue: for the backoff's delay, or,
 *   held for an operator, for `PARKED_FOR_OPERATOR_MS` with the reason recorded where
 *   `zimage jobs parked` and `zimage status` find it.
 */
import { AppError, ERROR_CATALOGUE, type JobResult } from '@zimage/shared';
import type { Redis } from 'ioredis';
import type { JobContext } from './job-context.js';
import { publishExpired, publishFailed, publishSucceeded, type EventSink } from './job-events.js';
import { cancelRequested } from './cancel-requested.js';
import { recordParked } from './parked-jobs.js';
import type { StepOutcome } from './step-outcome.js';
import { requeue, toRetryable, toUnrecoverable } from './to-bullmq-error.js';

/**
 * A job parked for an operator comes back by itself after this long (and parks again if nothing
 * changed): within the image link's 24 hours, so a storage fixed without `zimage jobs retry` still
 * gets the image without paying for it again.
 */
export const PARKED_FOR_OPERATOR_MS = 6 * 3600 * 1000;

export async function settleOutcome(ctx: JobContext, outcome: StepOutcome, sink: EventSink & { redis: Redis }): Promise<JobResult> {
  const { job, token, payload, log } = ctx;
  switch (outcome.kind) {
    case 'succeeded':
      await publishSucceeded(sink, job, payload, outcome.result);
      return outcome.result;
    case 'failed':
      await publishFailed(sink, job, payload, outcome.error, outcome.as);
      if (outcome.as === 'cancelled') log.info('Cancelled on request');
      else log.warn({ err: outcome.error }, `Failed permanently: ${outcome.error.code}`);
      throw toUnrecoverable(outcome.error);
    case 'expired': {
      const deadline = new Date(outcome.deadline).toISOString();
      await publishExpired(sink, job, payload, deadline);
      log.info({ deadline }, 'Job expired before it started; not sent upstream');
      throw toUnrecoverable(new AppError('JOB_EXPIRED', `not started before its deadline ${deadline}; never sent upstream`));
    }
    case 'retry': {
      const attempts = job.opts.attempts ?? 1;
      const last = job.attemptsMade + 1 >= attempts;
      log.warn({ err: outcome.error, final: last }, `Attempt ${job.attemptsMade + 1} of ${attempts} failed: ${outcome.error.code}`);
      if (last) await publishFailed(sink, job, payload, outcome.error);
      throw toRetryable(outcome.error);
    }
    case 'requeue': {
      log.debug({ delayMs: outcome.delayMs }, `Back to the queue: ${outcome.why}`);
      const delayed = await requeue(job, token, outcome.delayMs);
      // A cancel that came while this run was ending would wait out the delay (a held job: its
      // tenant's turn). The next run ends it before any call: let it come now.
      if (outcome.delayMs > 0 && (await cancelRequested(sink.redis, sink.publish.prefix, job))) await job.promote().catch(() => {});
      throw delayed;
    }
    case 'park': {
      await job.updateData({ ...job.data, checkpoint: outcome.checkpoint });
      if (outcome.forOperator) {
        const action = `${ERROR_CATALOGUE[outcome.error.code].action} The paid image is kept: \`zimage jobs retry ${job.id} --key NEW_KEY\` stores it under another key.`;
        await recordParked(sink.redis, sink.publish.prefix, String(job.id), { code: outcome.error.code, message: outcome.error.message, action, at: new Date().toISOString() });
        log.error({ err: outcome.error, action }, `PAID IMAGE PARKED — ${outcome.error.code}: ${outcome.error.message}. ${action}`);
        throw await requeue(job, token, PARKED_FOR_OPERATOR_MS);
      }
      log.warn({ err: outcome.error, failures: outcome.checkpoint.postFailures, delayMs: outcome.delayMs }, `Storing the paid image failed (${outcome.error.code}); retrying in ${outcome.delayMs} ms without a new generation`);
      throw await requeue(job, token, outcome.delayMs);
    }
  }
}
