/** `GET /v1/budgets`, `GET/PUT/DELETE /v1/budgets/:id`: budgets with their usage (docs/spend-control.md). */
import type { Producer } from '@zimage/producer';
import { AppError } from '@zimage/shared';
import type { FastifyInstance } from 'fastify';
import type { z } from 'zod';
import type { budgetListSchema, budgetPutSchema, budgetRemovedSchema, budgetViewSchema } from './api-schemas.js';

export function budgetRoutes(app: FastifyInstance, producer: Producer): void {
  app.get('/v1/budgets', async () => ({ budgets: await producer.listBudgets() }) satisfies z.input<typeof budgetListSchema>);

  app.get<{ Params: { id: string } }>('/v1/budgets/:id', async (request) => {
    const view = await producer.getBudget(request.params.id);
    if (!view) throw new AppError('BUDGET_NOT_FOUND', `no budget ${request.params.id}`);
    return view satisfies z.input<typeof budgetViewSchema>;
  });

  app.put<{ Params: { id: string } }>('/v1/budgets/:id', async (request) => {
    const type = (request.headers['content-type'] ?? '').split(';')[0]?.trim().toLowerCase();
    if (type !== 'application/json') throw new AppError('UNSUPPORTED_MEDIA_TYPE', 'content-type: a budget is application/json');
    const body = request.body;
    if (body === null || typeof body !== 'object' || Array.isArray(body)) throw new AppError('REQUEST_INVALID', 'body: must be a JSON object (a budget)');
    if ('id' in body && (body as { id: unknown }).id !== request.params.id) throw new AppError('REQUEST_INVALID', 'body.id: must be left out, or equal the id in the path');
    return (await producer.setBudget({ ...(body as object), id: request.params.id } as Parameters<Producer['setBudget']>[0])) satisfies z.input<typeof budgetPutSchema>;
  });

  app.delete<{ Params: { id: string } }>('/v1/budgets/:id', async (request) => {
    const { woken } = await producer.removeBudget(request.params.id);
    return { id: request.params.id, removed: true as const, woken } satisfies z.input<typeof budgetRemovedSchema>;
  });
}
