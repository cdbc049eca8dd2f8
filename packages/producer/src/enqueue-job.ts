/**
 * Enqueues one job: validated whole (key template and webhook URL included) before anything
 * touches Redis; an idempotency key returns the earlier job, or refuses a different request.
 */
import { AppError, storeWebhookTargets, type FieldIssue, type JobPayload, type JobRequestInput, type JobResult, type WebhookSpec } from '@zimage/shared';
import { Job } from 'bullmq';
import { addPreparedJobs, queueJobs, releaseCancelled } from './add-jobs.js';
import { adjustTotal, joinBatch } from './batch-record.js';
import { prepareJob } from './prepare-job.js';
import { jobHashKey, type ProducerContext } from './producer-context.js';

export interface EnqueuedJob {
  jobId: string;
  key: string;
  /** False when an earlier job with the same idempotency key was returned instead. */
  created: boolean;
}

/**
 * `request` is validated at run time too: callers without types (HTTP bodies, JavaScript) get
 * REQUEST_INVALID. `tenant`: the tenant of the API token that sent it (see PrepareContext.boundTenant).
 */
export async function enqueueJob(context: ProducerContext, request: JobRequestInput, options: { tenant?: string | undefined } = {}): Promise<EnqueuedJob> {
  const prepared = prepareJob(request, { now: Date.now(), keyLimits: context.keyLimits, boundTenant: options.tenant });
  if (!prepared.ok) throw requestInvalid(prepared.issues);
  const { job } = prepared;
  await refuseWebhook(context, job.webhook);
  await storeWebhookTargets(context.connection, context.prefix, job.webhook ? [job.webhook] : []);
  let repeat = false;
  if (job.payload.batchId) {
    // Joining an existing batch: count the job in before it can finish.
    await joinBatch(context, job.payload.batchId);
    try {
      const { existing } = await addPreparedJobs(context, [job]);
      if (existing.length > 0) await adjustTotal(context, job.payload.batchId, -1);
    } catch (error) {
      await adjustTotal(context, job.payload.batchId, -1).catch(() => {});
      throw error;
    }
  } else {
    if (job.idempotent) await releaseCancelled(context, [job.jobId]);
    // A repeat finds its job there (BullMQ would keep it anyway): adding it again would also put it
    // back at the end of its tenant's lane, or give its tenant a turn for nothing.
    repeat = job.idempotent && (await context.connection.exists(jobHashKey(context, job.jobId))) === 1;
    if (!repeat) await queueJobs(context, [job]);
  }
  if (!job.idempotent) return { jobId: job.jobId, key: job.payload.key, created: true };
  // BullMQ ignores an add whose id exists; tell a repeat from a conflicting reuse of the key.
  let stored = await Job.fromId<JobPayload, JobResult>(context.queue, job.jobId);
  if (!stored && repeat) {
    // The earlier job was removed (retention, a cancel) between the check and now: queue this one.
    await queueJobs(context, [job]);
    stored = await Job.fromId<JobPayload, JobResult>(context.queue, job.jobId);
  }
  if (stored && stored.data.requestHash !== job.payload.requestHash) {
    throw new AppError('IDEMPOTENCY_CONFLICT', `Idempotency key already used for a different request (job ${job.jobId})`, {
      details: { jobId: job.jobId },
    });
  }
  const created = !stored || stored.data.createdAt === job.payload.createdAt;
  return { jobId: job.jobId, key: stored?.data.key ?? job.payload.key, created };
}

function requestInvalid(issues: readonly FieldIssue[]): AppError {
  return new AppError('REQUEST_INVALID', `Invalid job request: ${issues.map((i) => `${i.field || '(request)'}: ${i.message}`).join('; ')}`, {
    details: { issues },
  });
}

async function refuseWebhook(context: ProducerContext, webhook: WebhookSpec | undefined): Promise<void> {
  const problem = webhook ? await context.webhooks.problem(webhook.url) : undefined;
  if (problem) throw new AppError('WEBHOOK_URL_REFUSED', `Invalid job request: webhook.url: ${problem}`, { details: { issues: [{ field: 'webhook.url', message: problem }] } });
}
