/**
 * Completion events, published on the Redis stream `zimage:events` (and, later, as webhooks).
 *
 * Every event has a stable id derived from what it is about (`job.succeeded` of job X always has the
 * same id), so a consumer can deduplicate however often an event is delivered.
 */
import { createHash } from 'node:crypto';
import { z } from 'zod';
import { jobResultSchema } from './job-result.js';

export const EVENT_SCHEMA_VERSION = 1;

const base = {
  id: z.string(),
  version: z.literal(EVENT_SCHEMA_VERSION),
  /** ISO 8601 time the event was first produced. */
  timestamp: z.string(),
};

const jobRef = {
  jobId: z.string(),
  batchId: z.string().optional(),
  metadata: z.record(z.string(), z.string()),
};

export const jobSucceededEventSchema = z.object({
  ...base,
  type: z.literal('job.succeeded'),
  data: z.object({ ...jobRef, result: jobResultSchema }),
});

export const jobFailedEventSchema = z.object({
  ...base,
  type: z.literal('job.failed'),
  data: z.object({
    ...jobRef,
    error: z.object({
      code: z.string(),
      message: z.string(),
      upstreamCode: z.string().optional(),
      requestId: z.string().optional(),
    }),
    attempts: z.number().int(),
  }),
});

export const jobExpiredEventSchema = z.object({
  ...base,
  type: z.literal('job.expired'),
  data: z.object({ ...jobRef, deadline: z.string() }),
});

export const batchCompletedEventSchema = z.object({
  ...base,
  type: z.literal('batch.completed'),
  data: z.object({
    batchId: z.string(),
    total: z.number().int(),
    succeeded: z.number().int(),
    failed: z.number().int(),
    expired: z.number().int(),
    cancelled: z.number().int(),
  }),
});

/** A batch's first failed job (published once per batch, right after that job's `job.failed`). */
export const batchFirstFailureEventSchema = z.object({
  ...base,
  type: z.literal('batch.first_failure'),
  data: z.object({
    batchId: z.string(),
    jobId: z.string(),
    error: z.object({ code: z.string(), message: z.string() }),
  }),
});

/** Beside `batch.completed` when some of the batch's jobs failed or expired: the counts and the failures by error code. */
export const batchExhaustedEventSchema = z.object({
  ...base,
  type: z.literal('batch.exhausted'),
  data: batchCompletedEventSchema.shape.data.extend({ failedByCode: z.record(z.string(), z.number().int()) }),
});

/**
 * A scheduled pipeline's tick that failed for good (its items invalid, its CSV unreadable, its feed
 * down through every retry): no batch was made for `tickAt`. One per tick.
 */
export const scheduleFailedEventSchema = z.object({
  ...base,
  type: z.literal('schedule.failed'),
  data: z.object({
    scheduleId: z.string(),
    /** The time the tick was due (ISO). */
    tickAt: z.string(),
    error: z.object({ code: z.string(), message: z.string() }),
    attempts: z.number().int(),
  }),
});

const budgetState = {
  budgetId: z.string(),
  scope: z.enum(['account', 'batch', 'pipeline', 'tenant']),
  subject: z.string(),
  kind: z.enum(['hard', 'soft']),
  limitUsd: z.number(),
  period: z.enum(['day', 'week', 'month', 'none']),
  /** The period it is about: `2026-12-03`, `w2026-11-30`, `2026-12` or `all`. */
  periodKey: z.string(),
  spentUsd: z.number(),
  /** Calls whose outcome is unknown (a timeout or reset after sending), counted against the limit. */
  maybeBilledUsd: z.number(),
  reservedUsd: z.number(),
};

/**
 * A hard budget reached: the jobs it covers are parked (not failed, attempts kept) until the
 * period rolls over (`resumesAt`) or the budget is raised. Once per budget, period and limit.
 */
export const budgetExhaustedEventSchema = z.object({
  ...base,
  type: z.literal('budget.exhausted'),
  data: z.object({ ...budgetState, resumesAt: z.string().optional() }),
});

/** A soft budget reached: nothing stops. Once per budget, period and limit. */
export const budgetWarningEventSchema = z.object({
  ...base,
  type: z.literal('budget.warning'),
  data: z.object(budgetState),
});

export const zimageEventSchema = z.discriminatedUnion('type', [
  jobSucceededEventSchema,
  jobFailedEventSchema,
  jobExpiredEventSchema,
  batchCompletedEventSchema,
  batchFirstFailureEventSchema,
  batchExhaustedEventSchema,
  scheduleFailedEventSchema,
  budgetExhaustedEventSchema,
  budgetWarningEventSchema,
]);

export type ZimageEvent = z.output<typeof zimageEventSchema>;
export type JobSucceededEvent = z.output<typeof jobSucceededEventSchema>;
export type JobFailedEvent = z.output<typeof jobFailedEventSchema>;
export type JobExpiredEvent = z.output<typeof jobExpiredEventSchema>;
export type BatchCompletedEvent = z.output<typeof batchCompletedEventSchema>;
export type BatchFirstFailureEvent = z.output<typeof batchFirstFailureEventSchema>;
export type BatchExhaustedEvent = z.output<typeof batchExhaustedEventSchema>;
export type ScheduleFailedEvent = z.output<typeof scheduleFailedEventSchema>;
export type BudgetExhaustedEvent = z.output<typeof budgetExhaustedEventSchema>;
export type BudgetWarningEvent = z.output<typeof budgetWarningEventSchema>;
export type JobEvent = JobSucceededEvent | JobFailedEvent | JobExpiredEvent;

/** `evt_` + 24 hex chars of sha256(type:subject). No dots, as Standard Webhooks ids require. */
export function eventIdFor(type: ZimageEvent['type'], subjectId: string): string {
  return `evt_${createHash('sha256').update(`${type}:${subjectId}`).digest('hex').slice(0, 24)}`;
}
