/** `POST /v1/jobs`, `GET /v1/jobs` (a batch's or a state's jobs, cursor pages), `GET /v1/jobs/:id`, `DELETE /v1/jobs/:id`. */
import { AppError, BATCH_ID_PATTERN, type JobRequestInput } from '@zimage/shared';
import type { FastifyInstance } from 'fastify';
import type { JobState, Producer } from '@zimage/producer';
import { bulkJobsRequestSchema, type bulkJobsResultSchema, type jobAcceptedSchema, type jobCancelSchema, jobListQuerySchema, type jobPageSchema } from './api-schemas.js';
import type { z } from 'zod';
import { parseQuery } from './parse-query.js';
import { fingerprintOf, type Idempotency } from './idempotency.js';
import { jobResponse } from './job-view.js';
import { tenantOf, visibleTo } from './tenant-scope.js';

/** A single job request is small; anything bigger is not one. */
export const JOB_BODY_LIMIT = 64 * 1024;
const ID_PATTERN = /^[A-Za-z0-9_.:-]{1,128}$/;

export function jobRoutes(app: FastifyInstance, producer: Producer, idempotency: Idempotency): void {
  app.post('/v1/jobs', { bodyLimit: JOB_BODY_LIMIT }, async (request, reply) => {
    const type = (request.headers['content-type'] ?? '').split(';')[0]?.trim().toLowerCase();
    if (type !== 'application/json') throw new AppError('UNSUPPORTED_MEDIA_TYPE', 'content-type: a job request is application/json');
    const body = request.body;
    if (body === null || typeof body !== 'object' || Array.isArray(body)) {
      throw new AppError('REQUEST_INVALID', 'body: must be a JSON object (a job request)');
    }
    // A tenant's token enqueues for its tenant only (the producer refuses another tenant and keeps
    // its keys, cache and idempotency keys apart), and only into its own batches.
    const tenant = tenantOf(request);
    const batchId = (body as { batchId?: unknown }).batchId;
    if (tenant !== undefined && typeof batchId === 'string') {
      const batch = BATCH_ID_PATTERN.test(batchId) ? await producer.getBatch(batchId) : null;
      if (!batch || batch.tenant !== tenant) throw new AppError('JOB_NOT_FOUND', `no batch ${batchId} of tenant ${tenant}`);
    }
    const scope = tenant === undefined ? 'POST /v1/jobs' : `POST /v1/jobs tenant=${tenant}`;
    const outcome = await idempotency.run(request.headers['idempotency-key'], scope, fingerprintOf(JSON.stringify(body)), async () => {
      // Not checked here: enqueue validates at run time and answers REQUEST_INVALID field by field.
      const job = await producer.enqueue(body as JobRequestInput, { tenant });
      return {
        status: 202,
        body: { id: job.jobId, status: 'queued', created: job.created, key: job.key, statusUrl: `/v1/jobs/${encodeURIComponent(job.jobId)}` } satisfies z.input<typeof jobAcceptedSchema>,
      };
    });
    if (outcome.replayed) reply.header('idempotent-replayed', 'true');
    return reply.code(outcome.status).send(outcome.body);
  });

  app.post('/v1/jobs/bulk', async (request, reply) => {
    const type = (request.headers['content-type'] ?? '').split(';')[0]?.trim().toLowerCase();
    if (type !== 'application/json') throw new AppError('UNSUPPORTED_MEDIA_TYPE', 'content-type: a bulk request is application/json');
    const body = parseQuery(bulkJobsRequestSchema, request.body, 'body');
    const filter = {
      batchId: body.batchId,
      pipeline: body.pipeline,
      tenant: body.tenant,
      createdAfter: body.createdAfter === undefined ? undefined : new Date(body.createdAfter),
      createdBefore: body.createdBefore === undefined ? undefined : new Date(body.createdBefore),
    };
    const dryRun = { dryRun: body.dryRun === true };
    const outcome = await idempotency.run(request.headers['idempotency-key'], 'POST /v1/jobs/bulk', fingerprintOf(JSON.stringify(body)), async () => ({
      status: 200,
      body: (body.action === 'cancel'
        ? { action: 'cancel' as const, ...(await producer.cancelJobs({ ...filter, state: body.state }, dryRun)) }
        : { action: 'retry' as const, ...(await producer.retryJobs({ ...filter, code: body.code }, dryRun)) }) satisfies z.input<typeof bulkJobsResultSchema>,
    }));
    if (outcome.replayed) reply.header('idempotent-replayed', 'true');
    return reply.code(outcome.status).send(outcome.body);
  });

  app.get('/v1/jobs', async (request) => {
    const query = parseQuery(jobListQuerySchema, request.query);
    const page = await producer.listJobs({
      batchId: query.batchId,
      state: query.state as JobState | undefined,
      limit: query.limit,
      cursor: query.cursor,
    });
    return { jobs: page.jobs.map(jobResponse), nextCursor: page.nextCursor } satisfies z.input<typeof jobPageSchema>;
  });

  app.get<{ Params: { id: string } }>('/v1/jobs/:id', async (request) => {
    const id = checkId(request.params.id);
    const view = await producer.getJob(id);
    if (!view || !visibleTo(request, view.payload.tenant)) throw new AppError('JOB_NOT_FOUND', `no job ${id}`);
    return jobResponse(view);
  });

  app.delete<{ Params: { id: string } }>('/v1/jobs/:id', async (request, reply) => {
    const id = checkId(request.params.id);
    const outcome = await producer.cancelJob(id);
    return reply.code(outcome.state === 'cancelled' ? 200 : 202).send({ id, state: outcome.state, statusUrl: `/v1/jobs/${encodeURIComponent(id)}` } satisfies z.input<typeof jobCancelSchema>);
  });
}

export function checkId(id: string): string {
  if (!ID_PATTERN.test(id)) throw new AppError('JOB_NOT_FOUND', 'no such id (ids are 1–128 characters of A-Z a-z 0-9 _ . : -)');
  return id;
}
