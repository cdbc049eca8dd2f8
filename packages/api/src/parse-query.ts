/** A request's query string checked against its schema once, at the edge: REQUEST_INVALID names each `query.<field>`. */
import { AppError, toFieldIssues } from '@zimage/shared';
import type { z } from 'zod';

export function parseQuery<S extends z.ZodType>(schema: S, raw: unknown): z.output<S> {
  const parsed = schema.safeParse(raw ?? {});
  if (!parsed.success) {
    const issues = toFieldIssues(parsed.error, raw).map((i) => ({ ...i, field: `query.${i.field}` }));
    throw new AppError('REQUEST_INVALID', `Invalid query: ${issues.map((i) => `${i.field}: ${i.message}`).join('; ')}`, { details: { issues } });
  }
  return parsed.data;
}
