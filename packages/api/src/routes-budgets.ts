/**
 * `GET /v1/budgets`, `GET/PUT/DELETE /v1/budgets/:id`: budgets with their usage
 * (docs/spend-control.md); `GET /v1/quota` (accounts, fair share, budgets) and
 * `PUT /v1/tenants/:tenant` (a tenant's weight, docs/fair-share.md).
 */
import type { Producer } from '@zimage/producer';
import { AppError } from '@zimage/shared';
import type { FastifyInstance } from 'fastify';
import type { z } from 'zod';
import { type budgetListSchema, type budgetPutSchema, type budgetRemovedSchema, type budgetViewSchema, type quotaSchema, tenantWeightBodySchema, type tenantWeightSchema } from './api-schemas.js';
import { parseQuery } from './parse-query.js';

export function budgetRoutes(app: FastifyInstance, producer: Producer): void {
  app.get('/v1/budgets', async () => ({ budgets: await producer.listBudgets() }) satisfies z.input<typeof budgetListSchema>);

  app.get<{ Params: { id: string } }>('/v1/budgets/:id', async (request) => {
    const view = await producer.getBudget(request.params.id);
    if (!view) throw new AppError('BUDGET_NOT_FOUND', `no budget ${request.params.id}`);
    return view satisfies z.input<typeof budgetViewSchema>;
  });

  app.put<{ Params: { id: string } }>('/v1/budgets/:id', async (request) => {
    const body = jsonObject(request.headers['content-type'], request.body, 'a budget');
    if ('id' in body && (body as { id: unknown }).id !== request.params.id) throw new AppError('REQUEST_INVALID', 'body.id: must be left out, or equal the id in the path');
    return (await producer.setBudget({ ...(body as object), id: request.params.id } as Parameters<Producer['setBudget']>[0])) satisfies z.input<typeof budgetPutSchema>;
  });

  app.delete<{ Params: { id: string } }>('/v1/budgets/:id', async (request) => {
    const { woken } = await producer.removeBudget(request.params.id);
    return { id: request.params.id, removed: true as const, woken } satisfies z.input<typeof budgetRemovedSchema>;
  });

  app.get('/v1/quota', async () => (await producer.quota()) satisfies z.input<typeof quotaSchema>);

  app.put<{ Params: { tenant: string } }>('/v1/tenants/:tenant', async (request) => {
    const { weight } = parseQuery(tenantWeightBodySchema, jsonObject(request.headers['content-type'], request.body, "a tenant's weight"), 'body');
    return (await producer.setTenantWeight(request.params.tenant, weight)) satisfies z.input<typeof tenantWeightSchema>;
  });
}

/** A PUT body: application/json, one object. */
function jsonObject(contentType: string | undefined, body: unknown, what: string): object {
  const type = (contentType ?? '').split(';')[0]?.trim().toLowerCase();
  if (type !== 'application/json') throw new AppError('UNSUPPORTED_MEDIA_TYPE', `content-type: ${what} is application/json`);
  if (body === null || typeof body !== 'object' || Array.isArray(body)) throw new AppError('REQUEST_INVALID', `body: must be a JSON object (${what})`);
  return body;
}
