/** `POST /v1/batches` query: the same template and key options as `zimage batch`. */
import { batchIdSchema } from '@zimage/shared';
import { z } from 'zod';

export const batchQuerySchema = z.strictObject({
  promptTemplate: z.string().min(1).max(2000).optional(),
  key: z.string().min(1).max(1024).optional(),
  size: z.string().max(32).optional(),
  promptExtend: z.enum(['true', 'false']).optional(),
  cache: z.enum(['true', 'false']).optional(),
  cacheNamespace: z.string().max(64).optional(),
  cacheTtl: z.string().max(16).optional(),
  cacheRefresh: z.enum(['true', 'false']).optional(),
  priority: z.string().regex(/^\d{1,3}$/, { error: 'must be a whole number 0–100' }).optional(),
  deadline: z.string().max(64).optional(),
  rowKey: z.string().min(1).max(200).optional(),
  metadataColumns: z.string().max(4000).optional(),
  webhook: z.string().max(2048).optional(),
  webhookEvents: z.string().max(200).optional(),
  batchId: batchIdSchema.optional(),
});
export type BatchQuery = z.output<typeof batchQuerySchema>;
