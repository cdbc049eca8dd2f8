/**
 * A request's query string (or small JSON body) checked against its schema once, at the edge:
 * REQUEST_INVALID names each `query.<field>` (a body's fields by their own names).
 */
import { AppError, toFieldIssues } from '@zimage/shared';
import type { z } from 'zod';

export function parseQuery<S extends z.ZodType>(schema: S, raw: unknown, where: 'query' | 'body' = 'query'): z.output<S> {
  const parsed = schema.safeParse(raw ?? {});
  if (!parsed.success) {
    const issues = toFieldIssues(parsed.error, raw).map((i) => ({ ...i, field: where === 'query' ? `query.${i.field}` : i.field }));
    throw new AppError('REQUEST_INVALID', `Invalid ${where}: ${issues.map((i) => `${i.field}: ${i.message}`).join('; ')}`, { details: { issues } });
  }
  return parsed.data;
}
