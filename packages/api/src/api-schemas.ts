/**
 * What the API answers, as zod schemas: the route handlers are typed by them (a field a handler
 * drops or renames fails to compile) and `openapi.ts` describes them (so the document, the typed
 * client generated from it and the server cannot disagree). Requests are described by the
 * schemas that validate them, in `@zimage/shared` and `@zimage/producer`.
 */
import { BUDGET_PERIODS, BUDGET_SCOPES, batchIdSchema, budgetFields, EVENT_TYPES, jobResultSchema, nameSchema, tenantWeightSchema as weightSchema } from '@zimage/shared';
import { BATCH_STATES, CANCELLABLE_STATES, LISTED_JOB_STATES, MAX_PAGE_LIMIT, scheduleSpecFields } from '@zimage/producer';
import { z } from 'zod';

const isoTime = z.string().describe('ISO 8601 time (UTC)');
const nextCursor = z.string().nullable().describe('Pass as `cursor` for the next page; null on the last page');
const webhookView = z.object({ host: z.string(), events: z.array(z.enum(EVENT_TYPES)).optional() }).describe('A webhook by host only: its URL may hold a token');

export const jobStateSchema = z.enum(['waiting', 'active', 'delayed', 'prioritized', 'paused', 'completed', 'failed', 'cancelled', 'waiting-children', 'unknown']);

export const jobSchema = z.object({
  id: z.string(),
  state: jobStateSchema,
  attempts: z.number().int(),
  request: z.object({
    prompt: z.string(),
    size: z.string().describe('width*height'),
    seed: z.number().int().optional(),
    promptExtend: z.boolean(),
    key: z.string().describe('Storage key of the image'),
    metadata: z.record(z.string(), z.string()),
    deadline: isoTime.optional(),
    batchId: z.string().optional(),
    webhook: webhookView.optional(),
    cache: z.object({ namespace: z.string(), ttlSeconds: z.number().int(), refresh: z.boolean().optional() }).optional().describe('Render cache, when asked for'),
  }),
  result: jobResultSchema.optional().describe('Set once the job succeeded'),
  error: z.object({ code: z.string().describe('Stable error code (docs/errors.md)'), message: z.string() }).optional(),
  timings: z.object({ createdAt: isoTime, finishedAt: isoTime.optional() }),
});

export const jobAcceptedSchema = z.object({
  id: z.string(),
  status: z.literal('queued'),
  created: z.boolean().describe('false when a job with the same idempotency key was already queued'),
  key: z.string(),
  statusUrl: z.string(),
});

export const jobCancelSchema = z.object({ id: z.string(), state: z.enum(['cancelled', 'cancelling', 'storing']), statusUrl: z.string() });

export const jobPageSchema = z.object({ jobs: z.array(jobSchema), nextCursor });

export const batchSchema = z.object({
  batchId: z.string(),
  state: z.enum(BATCH_STATES as [string, ...string[]]),
  total: z.number().int(),
  counts: z.object({
    succeeded: z.number().int(),
    failed: z.number().int(),
    expired: z.number().int(),
    cancelled: z.number().int(),
    pending: z.number().int(),
    running: z.number().int().describe('Of the pending jobs, those a worker holds now'),
  }),
  failedByCode: z.record(z.string(), z.number().int()).describe('Failed jobs by error code'),
  firstFailureAt: isoTime.optional().describe('When the first job failed (batch.first_failure)'),
  progress: z.number().describe('Finished jobs over total, 0–1'),
  imagesPerMinute: z.number(),
  etaSeconds: z.number().nullable().describe('null until an image has succeeded'),
  estimatedCostUsd: z.number().describe('Spend of the succeeded jobs at list prices'),
  maybeBilledUsd: z.number().describe('Calls whose outcome is unknown (timeout or reset after sending): they may have been billed'),
  cached: z.number().int().describe('Succeeded jobs served from the render cache (no upstream call)'),
  savedUsd: z.number().describe('What the render cache hits would have cost at list prices'),
  createdAt: isoTime.optional(),
  completedAt: isoTime.optional(),
  source: z.string().optional(),
  resultsUrl: z.string(),
  galleryUrl: z.string(),
});

export const batchPageSchema = z.object({ batches: z.array(batchSchema), nextCursor });

export const batchAcceptedSchema = z.object({
  batchId: z.string(),
  items: z.number().int(),
  enqueued: z.number().int(),
  alreadyQueued: z.number().int().describe('Items whose idempotency key was already in the queue'),
  statusUrl: z.string(),
  resultsUrl: z.string(),
  galleryUrl: z.string(),
});

export const batchCancelSchema = z.object({
  batchId: z.string(),
  cancelled: z.number().int().describe('Removed before they started'),
  cancelling: z.number().int().describe('Running: their upstream call is being aborted'),
  storing: z.number().int().describe('Already paid for: the image is stored, not given up'),
  finished: z.number().int().describe('Already finished'),
});

export const manifestEntrySchema = z.object({
  jobId: z.string(),
  line: z.number().int().optional(),
  rowKey: z.string().optional(),
  status: z.enum(['succeeded', 'failed', 'expired', 'cancelled']),
  key: z.string().optional(),
  sha256: z.string().optional(),
  errorCode: z.string().optional(),
});

export const scheduleSchema = z.object({
  id: z.string(),
  source: z.enum(['file', 'api']),
  hash: z.string(),
  updatedAt: isoTime,
  spec: scheduleSpecFields.omit({ webhook: true }).extend({ webhook: webhookView.optional() }),
  nextRunAt: isoTime.optional(),
  lastRunAt: isoTime.optional(),
  lastBatchId: z.string().optional(),
  lastError: z.object({ code: z.string(), message: z.string(), at: isoTime }).optional(),
});

export const schedulePutSchema = scheduleSchema.extend({ change: z.enum(['created', 'updated', 'unchanged']) });
export const scheduleListSchema = z.object({ schedules: z.array(scheduleSchema) });
export const scheduleRemovedSchema = z.object({ id: z.string(), removed: z.literal(true) });

export const readySchema = z.object({
  ready: z.boolean(),
  redis: z.enum(['ok', 'unavailable']),
  storage: z.enum(['ok', 'unavailable']),
  fleet: z
    .object({
      paused: z.boolean(),
      reason: z.object({ code: z.string(), message: z.string(), action: z.string(), at: isoTime }).optional(),
      parkedJobs: z.number().int(),
    })
    .optional(),
});

const limit = z.coerce
  .number({ error: `must be a whole number from 1 to ${MAX_PAGE_LIMIT}` })
  .int({ error: `must be a whole number from 1 to ${MAX_PAGE_LIMIT}` })
  .min(1, { error: `must be a whole number from 1 to ${MAX_PAGE_LIMIT}` })
  .max(MAX_PAGE_LIMIT, { error: `must be a whole number from 1 to ${MAX_PAGE_LIMIT}` })
  .optional()
  .describe(`Page size, 1–${MAX_PAGE_LIMIT} (default 50)`);
const cursor = z.string().max(512).optional().describe('The previous page’s nextCursor');

/** `GET /v1/batches` query. */
export const batchListQuerySchema = z.strictObject({
  state: z.enum(BATCH_STATES as [string, ...string[]]).optional(),
  createdAfter: z.iso.datetime({ offset: true }).optional().describe('Only batches created at or after this time'),
  createdBefore: z.iso.datetime({ offset: true }).optional().describe('Only batches created before this time'),
  limit,
  cursor,
});

/** `GET /v1/jobs` query. */
export const jobListQuerySchema = z.strictObject({
  batchId: batchIdSchema.optional(),
  state: z.enum(LISTED_JOB_STATES as [string, ...string[]]).optional().describe('Required without batchId (and then not cancelled)'),
  limit,
  cursor,
});

/** `POST /v1/jobs/bulk` body: an action on a batch's, a pipeline's or a tenant's jobs chosen by filter (exactly one of the three). */
const bulkFilterFields = {
  batchId: batchIdSchema.optional().describe("This batch's jobs (give exactly one of batchId, pipeline, tenant)"),
  pipeline: nameSchema.optional().describe('The jobs of every batch this pipeline ticked'),
  tenant: nameSchema.optional().describe("This tenant's jobs"),
  createdAfter: z.iso.datetime({ offset: true }).optional().describe('Only jobs created at or after this time'),
  createdBefore: z.iso.datetime({ offset: true }).optional().describe('Only jobs created before this time'),
  dryRun: z.boolean().optional().describe('Count the matching jobs; change nothing'),
};

export const bulkJobsRequestSchema = z.discriminatedUnion(
  'action',
  [
    z.strictObject({
      action: z.literal('cancel').describe('Cancel the matching unfinished jobs, as DELETE /v1/jobs/{id} does (paid images still stored)'),
      state: z.enum(CANCELLABLE_STATES).optional().describe('Only jobs in this state (waiting includes prioritized)'),
      ...bulkFilterFields,
    }),
    z.strictObject({
      action: z.literal('retry').describe('Retry the matching failed jobs, with their checkpoints (no paid image is paid again) and fresh attempts'),
      code: z.string().regex(/^[A-Z][A-Z0-9_]{1,63}$/, { error: 'must be an error code such as UPSTREAM_CONTENT_REJECTED' }).optional().describe('Only jobs that failed with this error code'),
      ...bulkFilterFields,
    }),
  ],
  { error: 'action: must be cancel or retry' },
);

export const bulkJobsResultSchema = z.discriminatedUnion('action', [
  z.object({
    action: z.literal('cancel'),
    matched: z.number().int().describe('Unfinished jobs the filter matched'),
    cancelled: z.number().int(),
    cancelling: z.number().int(),
    storing: z.number().int(),
    finished: z.number().int().describe('Finished between being matched and cancelled'),
    dryRun: z.boolean(),
  }),
  z.object({
    action: z.literal('retry'),
    matched: z.number().int().describe('Failed jobs the filter matched'),
    retried: z.number().int().describe('Moved back to the queue'),
    finished: z.number().int().describe('Retried by someone else, or removed, before this could'),
    byCode: z.record(z.string(), z.number().int()).describe('Matched jobs by the code they failed with'),
    dryRun: z.boolean(),
  }),
]);

export const budgetViewSchema = z.object({
  id: z.string(),
  scope: z.enum(BUDGET_SCOPES),
  subject: z.string().describe('Account id (or * for every account together), batch id, pipeline id or tenant'),
  limitUsd: z.number(),
  kind: z.enum(['hard', 'soft']).describe('hard: parks the jobs it covers when reached; soft: budget.warning only'),
  period: z.enum(BUDGET_PERIODS).describe('UTC day, week (from Monday), month, or none'),
  usage: z.object({
    periodKey: z.string(),
    periodEndsAt: isoTime.optional(),
    spentUsd: z.number(),
    maybeBilledUsd: z.number().describe('Calls whose outcome is unknown (timeout or reset after sending), counted against the limit'),
    reservedUsd: z.number().describe('Calls in flight'),
    inFlight: z.number().int(),
    remainingUsd: z.number(),
  }),
  parkedJobs: z.number().int().describe('Jobs parked on it until the period rolls over or the budget is raised'),
});

export const budgetListSchema = z.object({ budgets: z.array(budgetViewSchema) });
export const budgetPutSchema = budgetViewSchema.extend({ woken: z.number().int().describe('Parked jobs woken by this change') });
export const budgetRemovedSchema = z.object({ id: z.string(), removed: z.literal(true), woken: z.number().int() });
export const accountQuotaSchema = z.object({
  id: z.string(),
  region: z.string(),
  rpm: z.number().describe("The fleet-wide pace now, requests a minute (the governor's)"),
  ceilingRpm: z.number().nullable().describe('The highest pace the account has shown it takes (learned from throttles), or null'),
  targetRpm: z.number(),
  sentLastMinute: z.number().int(),
  inFlight: z.number().int(),
  probing: z.boolean(),
  utilisation: z.number(),
  throttleRatio: z.number().describe('Throttled share of the calls over the last minute'),
  blockedForMs: z.number(),
  disabledReason: z.string().nullable(),
  at: isoTime.describe('When a worker last reported it'),
});
export const laneStatusSchema = z.object({
  tenant: z.string().nullable().describe('The tenant, or null for jobs without one'),
  weight: z.number().int(),
  waiting: z.number().int().describe('Jobs held in its lane, waiting for their turn'),
  targetShare: z.number().describe('Its share of the pace while the lanes with work now keep it'),
  admittedRecently: z.number().int().describe('Jobs admitted from it over the last two minutes'),
  share: z.number().describe('Their share of all jobs admitted over the last two minutes'),
});
export const quotaSchema = z.object({
  accounts: z.array(accountQuotaSchema).describe('Accounts a running worker reported in the last minute'),
  fairShare: z.object({ enabled: z.boolean(), lanes: z.array(laneStatusSchema) }),
  budgets: z.array(budgetViewSchema),
});
export const tenantWeightBodySchema = z.strictObject({ weight: weightSchema.describe('Turns for each turn of a weight-1 tenant (default 1)') });
export const tenantWeightSchema = z.object({ tenant: z.string(), weight: z.number().int() });

/** The body of PUT /v1/budgets/:id: the budget without its id (the path has it). */
export const budgetBodySchema = budgetFields.omit({ id: true });

export type ApiJob = z.input<typeof jobSchema>;
export type ApiBatch = z.input<typeof batchSchema>;
