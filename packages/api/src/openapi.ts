/**
 * `GET /openapi.json`: the API described from the zod schemas that validate its requests and type
 * its answers (`api-schemas.ts`), so the document cannot drift from what the server accepts and
 * sends. `@zimage/client` is generated from this document; a test checks that every route the
 * server registers is described here and nothing else is.
 */
import { ERROR_CATALOGUE, jobRequestSchema, zimageEventSchema } from '@zimage/shared';
import { scheduleSpecSchema } from '@zimage/producer';
import { z } from 'zod';
import {
  batchAcceptedSchema,
  budgetBodySchema,
  budgetListSchema,
  budgetPutSchema,
  budgetRemovedSchema,
  budgetViewSchema,
  quotaSchema,
  tenantWeightBodySchema,
  tenantWeightSchema,
  bulkJobsRequestSchema,
  bulkJobsResultSchema,
  batchCancelSchema,
  batchListQuerySchema,
  batchPageSchema,
  batchSchema,
  jobAcceptedSchema,
  jobCancelSchema,
  jobListQuerySchema,
  jobPageSchema,
  jobSchema,
  manifestEntrySchema,
  readySchema,
  scheduleListSchema,
  schedulePutSchema,
  scheduleRemovedSchema,
  scheduleSchema,
} from './api-schemas.js';
import { batchQuerySchema } from './batch-query.js';

/** The document's version: the package's, so a client can tell which server it was generated from. */
export const API_VERSION = '1';

const errorSchema = z.object({
  error: z.object({
    code: z.enum(Object.keys(ERROR_CATALOGUE) as [string, ...string[]]).describe('Stable error code (docs/errors.md)'),
    message: z.string(),
    issues: z.array(z.object({ field: z.string(), message: z.string() })).optional().describe('Each invalid field and its rule'),
    items: z.array(z.unknown()).optional().describe('Batch: every invalid item, by index (JSON) or line (CSV)'),
    rejectedCount: z.number().int().optional(),
  }),
});

function jsonSchema(schema: z.ZodType, io: 'input' | 'output' = 'output'): Record<string, unknown> {
  const { $schema: _ignored, ...rest } = z.toJSONSchema(schema, { io, unrepresentable: 'any' }) as Record<string, unknown>;
  return rest;
}

const ref = (name: string) => ({ $ref: `#/components/schemas/${name}` });
const json = (schema: unknown) => ({ content: { 'application/json': { schema } } });
const ok = (description: string, name: string) => ({ description, ...json(ref(name)) });
const failure = (description: string) => ({ description, ...json(ref('Error')) });
/** Every authenticated route can answer these. */
const common = { '401': failure('No valid bearer token'), '503': failure('Redis unavailable'), default: failure('Any other error, in the same shape') };
const idempotencyKey = { name: 'Idempotency-Key', in: 'header', required: false, schema: { type: 'string', maxLength: 255 }, description: 'A repeat within 24 h returns the original response' };
const pathId = (name: string, description: string) => ({ name, in: 'path', required: true, schema: { type: 'string' }, description });

/** A zod object of query fields as OpenAPI query parameters. */
function queryParameters(schema: z.ZodObject): object[] {
  return Object.entries(schema.shape).map(([name, field]) => {
    const described = jsonSchema(field as z.ZodType, 'input');
    const { description, ...fieldSchema } = described;
    return { name, in: 'query', required: !(field as z.ZodType).safeParse(undefined).success, schema: fieldSchema, ...(description ? { description } : {}) };
  });
}

export function openApiDocument() {
  return {
    openapi: '3.1.0',
    info: { title: 'zimage', version: API_VERSION, description: 'Bulk and scheduled image generation with DashScope z-image-turbo. Errors: docs/errors.md.' },
    components: {
      securitySchemes: { bearer: { type: 'http', scheme: 'bearer' } },
      schemas: {
        JobRequest: jsonSchema(jobRequestSchema, 'input'),
        JobAccepted: jsonSchema(jobAcceptedSchema),
        Job: jsonSchema(jobSchema),
        JobPage: jsonSchema(jobPageSchema),
        JobCancel: jsonSchema(jobCancelSchema),
        BulkJobsRequest: jsonSchema(bulkJobsRequestSchema, 'input'),
        BulkJobsResult: jsonSchema(bulkJobsResultSchema),
        Batch: jsonSchema(batchSchema),
        BatchPage: jsonSchema(batchPageSchema),
        BatchAccepted: jsonSchema(batchAcceptedSchema),
        BatchCancel: jsonSchema(batchCancelSchema),
        ManifestEntry: jsonSchema(manifestEntrySchema),
        ScheduleSpec: jsonSchema(scheduleSpecSchema, 'input'),
        Schedule: jsonSchema(scheduleSchema),
        SchedulePut: jsonSchema(schedulePutSchema),
        ScheduleList: jsonSchema(scheduleListSchema),
        ScheduleRemoved: jsonSchema(scheduleRemovedSchema),
        Budget: jsonSchema(budgetViewSchema),
        BudgetBody: jsonSchema(budgetBodySchema, 'input'),
        BudgetList: jsonSchema(budgetListSchema),
        BudgetPut: jsonSchema(budgetPutSchema),
        BudgetRemoved: jsonSchema(budgetRemovedSchema),
        Quota: jsonSchema(quotaSchema),
        TenantWeightBody: jsonSchema(tenantWeightBodySchema, 'input'),
        TenantWeight: jsonSchema(tenantWeightSchema),
        Ready: jsonSchema(readySchema),
        Event: jsonSchema(zimageEventSchema),
        Error: jsonSchema(errorSchema),
      },
    },
    security: [{ bearer: [] }],
    paths: {
      '/v1/jobs': {
        post: {
          operationId: 'enqueueJob',
          summary: 'Enqueue one image job',
          parameters: [idempotencyKey],
          requestBody: { required: true, ...json(ref('JobRequest')) },
          responses: { '202': ok('Queued', 'JobAccepted'), '400': failure('Invalid request: each field and its rule'), '413': failure('Body over 64 KiB'), '415': failure('Not application/json'), ...common },
        },
        get: {
          operationId: 'listJobs',
          summary: "A batch's jobs (optionally in one state), or the queue's jobs in one state, a page at a time",
          parameters: queryParameters(jobListQuerySchema),
          responses: { '200': ok('A page of jobs', 'JobPage'), '400': failure('Invalid query'), ...common },
        },
      },
      '/v1/jobs/bulk': {
        post: {
          operationId: 'bulkJobs',
          summary: "Cancel a batch's unfinished jobs (by state and creation time) or retry its failed ones (by error code and creation time); dryRun counts them and changes nothing",
          parameters: [idempotencyKey],
          requestBody: { required: true, ...json(ref('BulkJobsRequest')) },
          responses: { '200': ok('What matched and what happened to it', 'BulkJobsResult'), '400': failure('Invalid request: each field and its rule'), '404': failure('No such batch'), '415': failure('Not application/json'), ...common },
        },
      },
      '/v1/jobs/{id}': {
        get: {
          operationId: 'getJob',
          summary: 'A job: state, attempts, result or error, timings',
          parameters: [pathId('id', 'Job id')],
          responses: { '200': ok('The job', 'Job'), '404': failure('No such job'), ...common },
        },
        delete: {
          operationId: 'cancelJob',
          summary: 'Cancel a job (a waiting one never runs; an active one is aborted; a paid image is still stored)',
          parameters: [pathId('id', 'Job id')],
          responses: { '200': ok('Cancelled', 'JobCancel'), '202': ok('Cancelling (it was running) or storing (paid for)', 'JobCancel'), '404': failure('No such job'), '409': failure('Already finished'), ...common },
        },
      },
      '/v1/batches': {
        post: {
          operationId: 'enqueueBatch',
          summary: 'Enqueue a batch: JSON array, NDJSON or CSV; every item validated first (all or nothing); up to 100,000 items',
          parameters: [idempotencyKey, ...queryParameters(batchQuerySchema)],
          requestBody: {
            required: true,
            content: {
              'application/json': { schema: { type: 'array', items: ref('JobRequest') } },
              'application/x-ndjson': { schema: { type: 'string' } },
              'text/csv': { schema: { type: 'string' } },
            },
          },
          responses: { '202': ok('Queued', 'BatchAccepted'), '400': failure('Invalid items (all listed) or query'), '413': failure('Too large'), '415': failure('Unsupported content type'), ...common },
        },
        get: {
          operationId: 'listBatches',
          summary: 'Batches newest first, by state and creation time, a page at a time',
          parameters: queryParameters(batchListQuerySchema),
          responses: { '200': ok('A page of batches', 'BatchPage'), '400': failure('Invalid query'), ...common },
        },
      },
      '/v1/batches/{id}': {
        get: {
          operationId: 'getBatch',
          summary: 'Counts by state, progress, images a minute, ETA, estimated cost',
          parameters: [pathId('id', 'Batch id')],
          responses: { '200': ok('The batch', 'Batch'), '404': failure('No such batch'), ...common },
        },
      },
      '/v1/batches/{id}/results': {
        get: {
          operationId: 'getBatchResults',
          summary: 'The results manifest: one ManifestEntry per finished job, NDJSON, in file-line order',
          parameters: [pathId('id', 'Batch id')],
          responses: { '200': { description: 'NDJSON of ManifestEntry', content: { 'application/x-ndjson': { schema: { type: 'string' } } } }, '404': failure('No such batch'), ...common },
        },
      },
      '/v1/batches/{id}/cancel': {
        post: {
          operationId: 'cancelBatch',
          summary: 'Cancel every job of the batch that has not finished',
          parameters: [pathId('id', 'Batch id'), idempotencyKey],
          responses: { '200': ok('What happened to its jobs', 'BatchCancel'), '404': failure('No such batch'), ...common },
        },
      },
      '/v1/budgets': {
        get: { operationId: 'listBudgets', summary: 'Every budget with its usage in the current period and the jobs parked on it', responses: { '200': ok('The budgets', 'BudgetList'), ...common } },
      },
      '/v1/budgets/{id}': {
        put: {
          operationId: 'putBudget',
          summary: 'Create or replace a budget (its usage is kept); wakes the jobs parked on it',
          parameters: [pathId('id', 'Budget id: [A-Za-z0-9_-]{1,64}')],
          requestBody: { required: true, ...json(ref('BudgetBody')) },
          responses: { '200': ok('The budget, with its usage and the parked jobs woken', 'BudgetPut'), '400': failure('Invalid budget: each field and its rule'), '415': failure('Not application/json'), ...common },
        },
        get: {
          operationId: 'getBudget',
          summary: 'One budget with its usage',
          parameters: [pathId('id', 'Budget id')],
          responses: { '200': ok('The budget', 'Budget'), '404': failure('No such budget'), ...common },
        },
        delete: {
          operationId: 'removeBudget',
          summary: 'Remove a budget; wakes the jobs parked on it',
          parameters: [pathId('id', 'Budget id')],
          responses: { '200': ok('Removed', 'BudgetRemoved'), '404': failure('No such budget'), ...common },
        },
      },
      '/v1/quota': {
        get: {
          operationId: 'getQuota',
          summary: "Per account the governor's pace, ceiling and throttles; fair share's lanes and each tenant's share; every budget with its usage",
          responses: { '200': ok('The quota overview', 'Quota'), ...common },
        },
      },
      '/v1/tenants/{tenant}': {
        put: {
          operationId: 'putTenantWeight',
          summary: "Set a tenant's fair-share weight",
          parameters: [pathId('tenant', 'Tenant: [A-Za-z0-9_-]{1,64}')],
          requestBody: { required: true, ...json(ref('TenantWeightBody')) },
          responses: { '200': ok('The weight set', 'TenantWeight'), '400': failure('Invalid tenant or weight'), '415': failure('Not application/json'), ...common },
        },
      },
      '/v1/schedules': {
        get: { operationId: 'listSchedules', summary: 'Every pipeline with its next and last run', responses: { '200': ok('The pipelines', 'ScheduleList'), ...common } },
      },
      '/v1/schedules/{id}': {
        put: {
          operationId: 'putSchedule',
          summary: 'Create or replace a pipeline (cron or every; prompts, csv or feed)',
          parameters: [pathId('id', 'Pipeline id: [a-z0-9][a-z0-9_-]{0,31}')],
          requestBody: { required: true, ...json(ref('ScheduleSpec')) },
          responses: { '200': ok('Updated or unchanged', 'SchedulePut'), '201': ok('Created', 'SchedulePut'), '400': failure('Invalid pipeline'), '415': failure('Not application/json'), ...common },
        },
        get: {
          operationId: 'getSchedule',
          summary: 'One pipeline with its next and last run',
          parameters: [pathId('id', 'Pipeline id')],
          responses: { '200': ok('The pipeline', 'Schedule'), '404': failure('No such pipeline'), ...common },
        },
        delete: {
          operationId: 'removeSchedule',
          summary: 'Remove a pipeline (batches it made are not touched)',
          parameters: [pathId('id', 'Pipeline id')],
          responses: { '200': ok('Removed', 'ScheduleRemoved'), '404': failure('No such pipeline'), ...common },
        },
      },
      '/batches': {
        get: { operationId: 'batchIndexPage', summary: 'HTML index of batches, newest first (HTTP Basic: the token as password)', parameters: queryParameters(batchListQuerySchema), responses: { '200': { description: 'HTML', content: { 'text/html': { schema: { type: 'string' } } } }, ...common } },
      },
      '/quota': {
        get: { operationId: 'quotaPage', summary: 'HTML quota page: accounts, fair share, budgets; refreshes every 5 s (HTTP Basic: the token as password)', responses: { '200': { description: 'HTML', content: { 'text/html': { schema: { type: 'string' } } } }, ...common } },
      },
      '/batches/{id}/gallery': {
        get: {
          operationId: 'galleryPage',
          summary: 'HTML review page of the batch (HTTP Basic: the token as password)',
          parameters: [pathId('id', 'Batch id'), { name: 'page', in: 'query', required: false, schema: { type: 'string' } }],
          responses: { '200': { description: 'HTML', content: { 'text/html': { schema: { type: 'string' } } } }, '404': failure('No such batch'), ...common },
        },
      },
      '/batches/{id}/images/{jobId}': {
        get: {
          operationId: 'galleryImage',
          summary: "One image of the batch, read from storage",
          parameters: [pathId('id', 'Batch id'), pathId('jobId', 'Job id')],
          responses: { '200': { description: 'PNG', content: { 'image/png': { schema: { type: 'string', format: 'binary' } } } }, '404': failure('No such image'), ...common },
        },
      },
      '/healthz': { get: { operationId: 'health', security: [], summary: 'Process up', responses: { '200': { description: 'ok', ...json({ type: 'object', properties: { ok: { type: 'boolean' } }, required: ['ok'] }) } } } },
      '/readyz': { get: { operationId: 'ready', security: [], summary: 'Redis and storage reachable; whether the fleet is paused and why', responses: { '200': ok('Ready', 'Ready'), '503': ok('Not ready', 'Ready') } } },
      '/metrics': { get: { operationId: 'metrics', summary: 'Prometheus metrics (any token, ZIMAGE_METRICS_TOKEN, or public with ZIMAGE_METRICS_PUBLIC)', responses: { '200': { description: 'Prometheus text format', content: { 'text/plain': { schema: { type: 'string' } } } }, '401': failure('No valid token') } } },
      '/openapi.json': { get: { operationId: 'openApi', security: [], summary: 'This document', responses: { '200': { description: 'OpenAPI 3.1', ...json({ type: 'object' }) } } } },
      '/docs': { get: { operationId: 'docs', security: [], summary: 'The API reference, rendered from this document (Swagger UI)', responses: { '200': { description: 'HTML', content: { 'text/html': { schema: { type: 'string' } } } } } } },
    },
  };
}
