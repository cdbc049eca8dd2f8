/** Enqueues a batch from an array: every item is validated before any is added (nothing half-done). */
import { AppError, type FieldIssue, type JobRequestInput } from '@zimage/shared';
import { addPreparedJobs } from './add-jobs.js';
import { adjustTotal, beginBatch, type BatchOptions } from './batch-record.js';
import type { EnqueuedJob } from './enqueue-job.js';
import { DuplicateFinder, newBatchId, prepareJob, type PrepareContext, type PreparedJob } from './prepare-job.js';
import type { ProducerContext } from './producer-context.js';

export interface ItemIssues {
  /** 0-based index in the array, or the file line for batch files. */
  index: number;
  issues: FieldIssue[];
}

export async function enqueueBatch(context: ProducerContext, requests: readonly JobRequestInput[], batchOptions: BatchOptions = {}): Promise<{ batchId: string; jobs: EnqueuedJob[] }> {
  const now = Date.now();
  const batchId = batchOptions.batchId ?? newBatchId();
  const prepared: PreparedJob[] = [];
  const invalid: ItemIssues[] = [];
  const duplicates = new DuplicateFinder();
  requests.forEach((request, index) => {
    const prepareContext: PrepareContext = { now, batchId, line: index + 1, keyLimits: context.keyLimits };
    const outcome = prepareJob(request, prepareContext);
    const issues = outcome.ok ? duplicates.check(outcome.job, index) : outcome.issues;
    if (outcome.ok && issues.length === 0) prepared.push(outcome.job);
    else invalid.push({ index, issues });
  });
  for (const job of prepared) {
    const problem = job.webhook ? await context.webhooks.problem(job.webhook.url) : undefined;
    if (problem) invalid.push({ index: (job.payload.line ?? 1) - 1, issues: [{ field: 'webhook.url', message: problem }] });
  }
  if (batchOptions.webhook) {
    const problem = await context.webhooks.problem(batchOptions.webhook.url);
    if (problem) throw new AppError('WEBHOOK_URL_REFUSED', `Batch webhook.url: ${problem}`);
  }
  if (invalid.length > 0) {
    invalid.sort((a, b) => a.index - b.index);
    throw new AppError('BATCH_INVALID', `${invalid.length} of ${requests.length} items are invalid; nothing was enqueued`, {
      details: { items: invalid },
    });
  }
  await beginBatch(context, { ...batchOptions, batchId, total: prepared.length });
  const { existing } = await addPreparedJobs(context, prepared);
  if (existing.length > 0) await adjustTotal(context, batchId, -existing.length);
  const old = new Set(existing);
  return { batchId, jobs: prepared.map((job) => ({ jobId: job.jobId, key: job.payload.key, created: !old.has(job.jobId) })) };
}
