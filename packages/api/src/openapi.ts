/**
 * `GET /openapi.json`: the API described from the same zod schemas that validate requests
 * (`z.toJSONSchema`), so the document cannot drift from what the server accepts.
 */
import { jobRequestSchema, jobResultSchema, zimageEventSchema } from '@zimage/shared';
import { z } from 'zod';

const errorSchema = {
  type: 'object',
  required: ['error'],
  properties: {
    error: {
      type: 'object',
      required: ['code', 'message'],
      properties: {
        code: { type: 'string', description: 'Stable error code (docs/errors.md)' },
        message: { type: 'string' },
        issues: { type: 'array', items: { type: 'object', properties: { field: { type: 'string' }, message: { type: 'string' } } } },
        items: { type: 'array', description: 'Batch: every invalid item, by index (JSON) or line (CSV)' },
      },
    },
  },
};

const json = (schema: unknown) => ({ content: { 'application/json': { schema } } });
const errors = { '400': { description: 'Invalid input', ...json({ $ref: '#/components/schemas/Error' }) }, '401': { description: 'No valid bearer token', ...json({ $ref: '#/components/schemas/Error' }) } };
const idempotencyKey = { name: 'Idempotency-Key', in: 'header', required: false, schema: { type: 'string', maxLength: 255 }, description: 'A repeat returns the original response (24 h)' };
const idParam = (name: string) => ({ name, in: 'path', required: true, schema: { type: 'string' } });
const batchQuery = ['promptTemplate', 'key', 'size', 'promptExtend', 'priority', 'deadline', 'rowKey', 'metadataColumns', 'webhook', 'webhookEvents', 'batchId'].map((name) => ({ name, in: 'query', required: false, schema: { type: 'string' } }));

export function openApiDocument() {
  return {
    openapi: '3.1.0',
    info: { title: 'zimage', version: '1', description: 'Bulk and scheduled image generation with DashScope z-image-turbo.' },
    components: {
      securitySchemes: { bearer: { type: 'http', scheme: 'bearer' } },
      schemas: {
        JobRequest: z.toJSONSchema(jobRequestSchema, { io: 'input', unrepresentable: 'any' }),
        JobResult: z.toJSONSchema(jobResultSchema, { unrepresentable: 'any' }),
        Event: z.toJSONSchema(zimageEventSchema, { unrepresentable: 'any' }),
        Error: errorSchema,
      },
    },
    security: [{ bearer: [] }],
    paths: {
      '/v1/jobs': {
        post: {
          summary: 'Enqueue one image job',
          parameters: [idempotencyKey],
          requestBody: { required: true, ...json({ $ref: '#/components/schemas/JobRequest' }) },
          responses: { '202': { description: 'Queued: id and status URL' }, ...errors },
        },
      },
      '/v1/jobs/{id}': {
        get: { summary: 'A job: state, attempts, result or error, timings', parameters: [idParam('id')], responses: { '200': { description: 'The job' }, '404': { description: 'No such job' } } },
        delete: { summary: 'Cancel a job (a waiting one never runs; an active one is aborted)', parameters: [idParam('id')], responses: { '200': { description: 'Cancelled' }, '202': { description: 'Cancelling (it was running)' }, '409': { description: 'Already finished' } } },
      },
      '/v1/batches': {
        post: {
          summary: 'Enqueue a batch: JSON array, NDJSON or CSV; every item validated first (all or nothing); up to 100,000 items',
          parameters: [idempotencyKey, ...batchQuery],
          requestBody: {
            required: true,
            content: {
              'application/json': { schema: { type: 'array', items: { $ref: '#/components/schemas/JobRequest' } } },
              'application/x-ndjson': { schema: { type: 'string' } },
              'text/csv': { schema: { type: 'string' } },
            },
          },
          responses: { '202': { description: 'Queued: batch id, status, results and gallery URLs' }, ...errors, '413': { description: 'Too large' } },
        },
      },
      '/v1/batches/{id}': { get: { summary: 'Counts by state, progress, images a minute, ETA, estimated cost', parameters: [idParam('id')], responses: { '200': { description: 'The batch' } } } },
      '/v1/batches/{id}/results': { get: { summary: 'The results manifest, NDJSON', parameters: [idParam('id')], responses: { '200': { description: 'NDJSON', content: { 'application/x-ndjson': {} } } } } },
      '/v1/batches/{id}/cancel': { post: { summary: "Cancel every job of the batch that has not finished", parameters: [idParam('id'), idempotencyKey], responses: { '200': { description: 'Counts' } } } },
      '/batches/{id}/gallery': { get: { summary: 'HTML review page of the batch', parameters: [idParam('id')], responses: { '200': { description: 'HTML', content: { 'text/html': {} } } } } },
      '/healthz': { get: { security: [], summary: 'Process up', responses: { '200': { description: 'ok' } } } },
      '/readyz': { get: { security: [], summary: 'Redis and storage reachable', responses: { '200': { description: 'ready' }, '503': { description: 'not ready' } } } },
      '/metrics': { get: { security: [], summary: 'Prometheus metrics', responses: { '200': { description: 'text/plain' } } } },
    },
  };
}
