/**
 * The payload: the normalised job request as stored in the BullMQ job's data.
 *
 * The worker validates it again before doing anything, because Redis may hold jobs written by
 * other or older code. Evolve it additively only: new fields are optional.
 * Never store secrets here (no API keys, no webhook secrets).
 */
import { z } from 'zod';
import { webhookSchema } from './job-request.js';
import { webhookRefSchema } from './webhooks/webhook-targets.js';
import { REGIONS } from './job-result.js';

/** Written by the worker as it goes, so a retry resumes where the previous attempt stopped. */
export const checkpointSchema = z.object({
  /** Set once the upstream returned an image: from here on, retries never call the API again
   * unless the URL has expired. */
  generated: z
    .object({
      imageUrl: z.string(),
      requestId: z.string().optional(),
      usedPrompt: z.string(),
      width: z.number().int(),
      height: z.number().int(),
      /** False when the API's answer had no size (`usage` missing): width/height are then only the
       * request's, and the PNG's own size is taken instead of being held against them. */
      sizeReported: z.boolean().optional(),
      at: z.number(),
      generateMs: z.number(),
      /** The account (and its region) that generated the image, for the result and the bill. */
      accountId: z.string().optional(),
      region: z.enum(REGIONS).optional(),
    })
    .optional(),
  /** Failed download/store tries since the image was generated (they use no attempts, and have no limit). */
  postFailures: z.number().int().nonnegative().optional(),
  /** Times the image had to be generated again because its URL expired (each one was billed). */
  regenerations: z.number().int().nonnegative().default(0),
});
export type Checkpoint = z.output<typeof checkpointSchema>;

export const jobPayloadSchema = z.object({
  v: z.literal(1),
  prompt: z.string().min(1),
  width: z.number().int().positive(),
  height: z.number().int().positive(),
  seed: z.number().int().nonnegative().optional(),
  promptExtend: z.boolean(),
  key: z.string().min(1),
  metadata: z.record(z.string(), z.string()),
  /** The job's own webhook, by reference (webhook-targets.ts); a URL in jobs queued before 0.2. */
  webhook: z.union([webhookRefSchema, webhookSchema]).optional(),
  /** Epoch ms; not started by then → expired, never sent upstream. */
  deadline: z.number().optional(),
  batchId: z.string().optional(),
  /** Who the job is for (budgets per tenant). */
  tenant: z.string().optional(),
  /** 1-based line of the batch file the job came from, for the results manifest. */
  line: z.number().int().positive().optional(),
  /** The row's identifying value (e.g. its SKU), echoed in the results manifest. */
  rowKey: z.string().optional(),
  /** sha256 of the normalised request, to tell a repeated idempotency key from a conflicting one. */
  requestHash: z.string(),
  createdAt: z.number(),
  checkpoint: checkpointSchema.optional(),
  /**
   * Times an operator retried the job after it failed (bulk retry). Part of its incarnation, so
   * that the retried run's terminal event is published and counted, under an id of its own.
   */
  retries: z.number().int().positive().optional(),
  /** Render cache: reuse an image stored for the same request hash (only on determined requests). */
  cache: z
    .object({
      namespace: z.string().min(1),
      ttlMs: z.number().int().positive(),
      /** Generate anyway, and offer the new image from then on. */
      refresh: z.boolean().optional(),
    })
    .optional(),
});
export type JobPayload = z.output<typeof jobPayloadSchema>;

/**
 * Which run of a job id an event belongs to: its creation time (BullMQ `job.timestamp`; an id
 * re-used after a cancel or retention is a new job), and the operator retry it is on, if any.
 */
export function jobIncarnation(timestamp: number, payload: { retries?: number | undefined } | undefined): string {
  return payload?.retries ? `${timestamp}.r${payload.retries}` : String(timestamp);
}
