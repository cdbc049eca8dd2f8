/**
 * Tenants' tokens (ZIMAGE_API_TENANT_TOKENS): a token bound to one tenant. What it creates is its
 * tenant's — every job it enqueues carries the tenant (a request naming another is refused) and
 * its idempotency keys are its own — and it reads only what its tenant created. Everything else
 * (budgets, weights, bulk operations, cancel, schedules, listings, pages, metrics) is for operator
 * tokens: a tenant must not be able to raise its own budget or see another's work.
 */
import { AppError, batchIdTenant, pipelineOfBatch } from '@zimage/shared';
import type { FastifyRequest } from 'fastify';

/** The routes (method and fastify pattern) a tenant's token may call. */
const TENANT_ROUTES = new Set(['POST /v1/jobs', 'GET /v1/jobs/:id', 'POST /v1/batches', 'GET /v1/batches/:id', 'GET /v1/batches/:id/results']);

const tenants = new WeakMap<FastifyRequest, string>();

export function tenantMayCall(method: string, routeUrl: string | undefined): boolean {
  return routeUrl !== undefined && TENANT_ROUTES.has(`${method.toUpperCase()} ${routeUrl}`);
}

export function forbidden(tenant: string): AppError {
  return new AppError('FORBIDDEN', `this token is tenant ${tenant}'s: it may enqueue, and read its own jobs and batches, only`);
}

export function bindTenant(request: FastifyRequest, tenant: string): void {
  tenants.set(request, tenant);
}

/** The tenant whose token made the request, or undefined for an operator token. */
export function tenantOf(request: FastifyRequest): string | undefined {
  return tenants.get(request);
}

/**
 * Whether the caller may see something belonging to `owner` (a job's or batch's tenant):
 * operators see everything; a tenant's token sees its own only. What it may not see is "not
 * found", so that ids of other tenants' work cannot be probed.
 */
export function visibleTo(request: FastifyRequest, owner: string | undefined): boolean {
  const tenant = tenantOf(request);
  return tenant === undefined || tenant === owner;
}

/**
 * A batch id the caller chose for a new batch (`POST /v1/batches?batchId=`). A tenant's token
 * names its batches `{tenant}.{name}`, so it can neither take an id the operator or another tenant
 * will use (and then read what they add to it) nor learn whether one exists. Nobody names a batch
 * like a schedule's tick (`sched-{pipeline}-{time}`): the tick would find it and make nothing,
 * and its jobs would count against the pipeline's budget.
 */
export function checkChosenBatchId(request: FastifyRequest, batchId: string): void {
  const tenant = tenantOf(request);
  if (tenant !== undefined && batchIdTenant(batchId) !== tenant) {
    throw new AppError('REQUEST_INVALID', `batchId: this token's batches are named ${tenant}.{name} (it is tenant ${tenant}'s)`, {
      details: { issues: [{ field: 'batchId', message: `must be ${tenant}.{name}` }] },
    });
  }
  if (pipelineOfBatch(batchId) !== undefined) {
    throw new AppError('REQUEST_INVALID', 'batchId: sched-{pipeline}-{time} ids are the batches of schedule ticks; choose another', {
      details: { issues: [{ field: 'batchId', message: 'must not be sched-{pipeline}-{time}' }] },
    });
  }
}
