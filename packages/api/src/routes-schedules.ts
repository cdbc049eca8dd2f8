/** `PUT /v1/schedules/:id`, `GET /v1/schedules`, `GET /v1/schedules/:id`, `DELETE /v1/schedules/:id`. */
import { AppError } from '@zimage/shared';
import type { FastifyInstance } from 'fastify';
import type { Schedules } from '@zimage/producer';
import type { z } from 'zod';
import type { scheduleListSchema, schedulePutSchema, scheduleRemovedSchema, scheduleSchema } from './api-schemas.js';

export function scheduleRoutes(app: FastifyInstance, schedules: Schedules): void {
  app.put<{ Params: { id: string } }>('/v1/schedules/:id', async (request, reply) => {
    const type = (request.headers['content-type'] ?? '').split(';')[0]?.trim().toLowerCase();
    if (type !== 'application/json') throw new AppError('UNSUPPORTED_MEDIA_TYPE', 'content-type: a schedule is application/json');
    const body = request.body;
    if (body === null || typeof body !== 'object' || Array.isArray(body)) throw new AppError('SCHEDULE_INVALID', 'body: must be a JSON object (a schedule)');
    const { schedule, change } = await schedules.put(request.params.id, body, 'api');
    const view = await schedules.get(schedule.id);
    // Removed by another request between the two calls.
    if (!view) throw new AppError('SCHEDULE_NOT_FOUND', `no schedule ${schedule.id}`);
    return reply.code(change === 'created' ? 201 : 200).send({ ...view, change } satisfies z.input<typeof schedulePutSchema>);
  });

  app.get('/v1/schedules', async () => ({ schedules: await schedules.list() }) satisfies z.input<typeof scheduleListSchema>);

  app.get<{ Params: { id: string } }>('/v1/schedules/:id', async (request) => {
    const view = await schedules.get(request.params.id);
    if (!view) throw new AppError('SCHEDULE_NOT_FOUND', `no schedule ${request.params.id}`);
    return view satisfies z.input<typeof scheduleSchema>;
  });

  app.delete<{ Params: { id: string } }>('/v1/schedules/:id', async (request, reply) => {
    if (!(await schedules.remove(request.params.id))) throw new AppError('SCHEDULE_NOT_FOUND', `no schedule ${request.params.id}`);
    return reply.code(200).send({ id: request.params.id, removed: true } satisfies z.input<typeof scheduleRemovedSchema>);
  });
}
