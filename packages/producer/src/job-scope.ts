/**
 * Which jobs a bulk operation works on: one batch's, a pipeline's (every batch its ticks made), or
 * a tenant's. Batches and pipelines are read from the batch job sets; a tenant's jobs have no set
 * of their own, so they are found in the queue's lists for the states asked for (unfinished for a
 * cancel, failed for a retry) and kept when their payload names the tenant.
 */
import { AppError, BATCH_ID_PATTERN, BATCH_ID_RULE, NAME_PATTERN, NAME_RULE, batchIndexKey, batchJobsKey, batchKey, pipelineOfBatch, tenantIdSchema, type JobPayload } from '@zimage/shared';
import type { ProducerContext } from './producer-context.js';

export type JobScope = { batchId: string } | { pipeline: string } | { tenant: string };

/** What a filter names: exactly one of batchId, pipeline, tenant. */
export interface ScopeFields {
  batchId?: string | undefined;
  pipeline?: string | undefined;
  tenant?: string | undefined;
}

const SCAN_COUNT = 500;

/** The scope a filter names, checked: REQUEST_INVALID unless exactly one is given and well formed; JOB_NOT_FOUND for a batch that does not exist. */
export async function scopeOf(context: ProducerContext, fields: ScopeFields): Promise<JobScope> {
  const given = (['batchId', 'pipeline', 'tenant'] as const).filter((name) => fields[name] !== undefined);
  if (given.length !== 1) {
    const message = `give exactly one of batchId, pipeline, tenant (got ${given.length === 0 ? 'none' : given.join(' and ')})`;
    const issues = (given.length === 0 ? (['batchId', 'pipeline', 'tenant'] as const) : given).map((field) => ({ field, message }));
    throw new AppError('REQUEST_INVALID', `batchId, pipeline, tenant: ${message}`, { details: { issues } });
  }
  if (fields.batchId !== undefined) {
    if (!BATCH_ID_PATTERN.test(fields.batchId)) throw new AppError('REQUEST_INVALID', `batchId: ${BATCH_ID_RULE}`);
    if (!(await context.connection.exists(batchKey(context.prefix, fields.batchId)))) throw new AppError('JOB_NOT_FOUND', `no batch ${fields.batchId}`);
    return { batchId: fields.batchId };
  }
  if (fields.pipeline !== undefined) {
    if (!NAME_PATTERN.test(fields.pipeline)) throw new AppError('REQUEST_INVALID', `pipeline: ${NAME_RULE}`);
    return { pipeline: fields.pipeline };
  }
  const tenant = tenantIdSchema.safeParse(fields.tenant);
  if (!tenant.success) throw new AppError('REQUEST_INVALID', `tenant: ${tenant.error.issues[0]?.message ?? 'is invalid'}`);
  return { tenant: tenant.data };
}

/** Whether a job (found by `scopeJobIds`) belongs to the scope: a tenant's list holds everyone's jobs. */
export function inScope(scope: JobScope, payload: JobPayload | undefined): boolean {
  return !('tenant' in scope) || payload?.tenant === scope.tenant;
}

/**
 * The ids of the jobs that may be in scope, a chunk at a time. For a tenant, the ids are read
 * up front (the operation moves jobs between these lists as it goes); check each with `inScope`.
 */
export async function* scopeJobIds(context: ProducerContext, scope: JobScope, states: 'unfinished' | 'failed'): AsyncGenerator<string[]> {
  if ('tenant' in scope) {
    const redis = context.connection;
    const key = (name: string) => context.queue.toKey(name);
    const lists =
      states === 'failed'
        ? [redis.zrange(key('failed'), '0', '-1')]
        : [redis.lrange(key('wait'), 0, -1), redis.lrange(key('paused'), 0, -1), redis.zrange(key('prioritized'), '0', '-1'), redis.zrange(key('delayed'), '0', '-1'), redis.lrange(key('active'), 0, -1)];
    const ids = [...new Set((await Promise.all(lists)).flat())];
    for (let i = 0; i < ids.length; i += SCAN_COUNT) yield ids.slice(i, i + SCAN_COUNT);
    return;
  }
  const batches = 'batchId' in scope ? [scope.batchId] : (await context.connection.zrange(batchIndexKey(context.prefix), '0', '-1')).filter((id) => pipelineOfBatch(id) === scope.pipeline);
  for (const batchId of batches) {
    let cursor = '0';
    do {
      const [next, ids] = await context.connection.sscan(batchJobsKey(context.prefix, batchId), cursor, 'COUNT', SCAN_COUNT);
      cursor = next;
      yield ids;
    } while (cursor !== '0');
  }
}
