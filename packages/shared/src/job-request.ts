/**
 * The job request: what a producer asks for. The same shape is accepted by the library
 * (`createProducer().enqueue`), the command line and the HTTP API.
 *
 * Glossary (used in identifiers, logs and docs):
 * - job request: what a caller submits (this file), validated before anything is enqueued;
 * - payload: the normalised request stored in the BullMQ job (`job-payload.ts`);
 * - attempt: one run of the processor for a job; BullMQ counts them;
 * - upstream: the DashScope z-image-turbo API (or the emulator standing in for it);
 * - result: what a succeeded job returns (`job-result.ts`); event: what is published on completion.
 */
import { z } from 'zod';
import { countPromptChars, MAX_PROMPT_CHARS } from './prompt.js';
import { encodeMetadataValue } from './storage/s3-metadata.js';
import { ASPECTS, parseSize, TIERS, type Aspect, type Tier } from './size.js';
import { parseDuration } from './duration.js';
import { batchIdSchema, nameSchema } from './ids.js';
import { MAX_CACHE_TTL_MS, MIN_CACHE_TTL_MS, whyNotCacheable } from './render-cache.js';

export const EVENT_TYPES = ['job.succeeded', 'job.failed', 'job.expired', 'batch.completed', 'batch.first_failure', 'batch.exhausted', 'schedule.failed', 'budget.exhausted', 'budget.warning'] as const;
export type EventType = (typeof EVENT_TYPES)[number];

export const METADATA_KEY_PATTERN = /^[A-Za-z0-9_.-]{1,64}$/;
export const MAX_METADATA_ENTRIES = 32;
/**
 * S3 caps user metadata at 2 KB (keys and values, as sent: non-ASCII values are percent-encoded,
 * so a Chinese character costs 9 bytes). We keep ~250 bytes for our own `sha256`, job id and
 * request id, and check the encoded size here, before anything is paid for.
 */
export const MAX_METADATA_BYTES = 1800;
const RESERVED_METADATA_KEY = /^(sha256|zimage-.*)$/i;
export const MAX_SEED = 2_147_483_647;
export const MIN_PRIORITY = 0;
export const MAX_PRIORITY = 100;

/**
 * BullMQ runs lower numbers first and treats 0 as "no priority", so our priority p (higher first)
 * is stored as MAX_PRIORITY + 1 − p: bulk work (p = 0) is 101. Producer and worker both use this.
 */
export function toBullPriority(priority: number): number {
  return MAX_PRIORITY + 1 - priority;
}

/** A job submitted with a priority above bulk (the worker lets it reserve further ahead). */
export function isPriorityJob(bullPriority: number | undefined): boolean {
  return bullPriority !== undefined && bullPriority < toBullPriority(MIN_PRIORITY);
}

const promptSchema = z
  .string({ error: 'must be a string' })
  .trim()
  .min(1, { error: 'must not be empty' })
  .refine((p) => countPromptChars(p) <= MAX_PROMPT_CHARS, {
    error: (issue) =>
      `must be at most ${MAX_PROMPT_CHARS} characters after trimming (got ${countPromptChars(String(issue.input))}); it is never cut silently`,
  });

const sizeSchema = z.string({ error: 'must be a string like "1024*1536"' }).transform((text, ctx) => {
  const parsed = parseSize(text);
  if (typeof parsed === 'string') {
    ctx.addIssue({ code: 'custom', message: parsed });
    return z.NEVER;
  }
  return parsed;
});

const metadataSchema = z
  .record(
    z.string().regex(METADATA_KEY_PATTERN, { error: 'metadata keys must match [A-Za-z0-9_.-]{1,64}' }),
    z.string({ error: 'metadata values must be strings' }).max(1024, { error: 'metadata values must be at most 1024 characters' }),
  )
  .superRefine((metadata, ctx) => {
    const entries = Object.entries(metadata);
    if (entries.length > MAX_METADATA_ENTRIES) {
      ctx.addIssue({ code: 'custom', message: `at most ${MAX_METADATA_ENTRIES} entries (got ${entries.length})` });
    }
    const bytes = entries.reduce((sum, [k, v]) => sum + Buffer.byteLength(k) + Buffer.byteLength(encodeMetadataValue(v)), 0);
    if (bytes > MAX_METADATA_BYTES) {
      ctx.addIssue({
        code: 'custom',
        message: `at most ${MAX_METADATA_BYTES} bytes in all as stored (got ${bytes}; non-ASCII characters are percent-encoded); object stores cap metadata at 2 KB`,
      });
    }
    for (const key of Object.keys(metadata)) {
      if (RESERVED_METADATA_KEY.test(key)) {
        ctx.addIssue({ code: 'custom', path: [key], message: 'is reserved (sha256 and zimage-* are set by zimage)' });
      }
    }
  });

export const webhookSchema = z.strictObject({
  url: z
    .url({ protocol: /^https?$/, error: 'must be an absolute http(s) URL' })
    .max(2048, { error: 'must be at most 2048 characters' }),
  events: z.array(z.enum(EVENT_TYPES)).min(1).optional(),
});

export const jobRequestSchema = z
  .strictObject({
    prompt: promptSchema,
    size: sizeSchema.optional(),
    aspect: z.enum(ASPECTS as [Aspect, ...Aspect[]], { error: `must be one of ${ASPECTS.join(', ')}` }).optional(),
    tier: z.enum(TIERS as [Tier, ...Tier[]], { error: `must be one of ${TIERS.join(', ')}` }).optional(),
    seed: z
      .number({ error: 'must be an integer' })
      .int({ error: 'must be an integer' })
      .min(0, { error: `must be between 0 and ${MAX_SEED}` })
      .max(MAX_SEED, { error: `must be between 0 and ${MAX_SEED}` })
      .optional(),
    promptExtend: z.boolean({ error: 'must be true or false' }).default(false),
    key: z.string().min(1, { error: 'must not be empty' }).max(1024).optional(),
    metadata: metadataSchema.default({}),
    webhook: webhookSchema.optional(),
    idempotencyKey: z
      .string()
      .min(1)
      .max(255, { error: 'must be at most 255 characters' })
      .regex(/^[\x21-\x7e]+$/, { error: 'must be printable ASCII without spaces' })
      .optional(),
    priority: z
      .number()
      .int({ error: 'must be an integer' })
      .min(MIN_PRIORITY, { error: `must be between ${MIN_PRIORITY} and ${MAX_PRIORITY}` })
      .max(MAX_PRIORITY, { error: `must be between ${MIN_PRIORITY} and ${MAX_PRIORITY}` })
      .default(0),
    deadline: z.iso
      .datetime({ offset: true, error: 'must be an ISO 8601 date-time with a time zone, e.g. 2026-11-24T06:00:00+08:00' })
      .optional(),
    batchId: batchIdSchema.optional(),
    /** Who the job is for: budgets per tenant (and, later, fair share) count it. */
    tenant: nameSchema.optional(),
    /** Reuse an image already stored for the same request (render cache; seeded, promptExtend off). */
    cache: z.boolean({ error: 'must be true or false' }).default(false),
    cacheNamespace: nameSchema.optional(),
    cacheTtl: z
      .string({ error: 'must be a duration such as "30d"' })
      .refine((text) => {
        const ms = parseDuration(text);
        return ms !== undefined && ms >= MIN_CACHE_TTL_MS && ms <= MAX_CACHE_TTL_MS;
      }, { error: 'must be a duration from 1m to 365d, such as "30d" or "12h"' })
      .optional(),
    /** Generate (and pay) even when the cache has the image, and offer the new one from then on. */
    cacheRefresh: z.boolean({ error: 'must be true or false' }).optional(),
  })
  .superRefine((request, ctx) => {
    if (request.cache) {
      const why = whyNotCacheable(request);
      if (why) ctx.addIssue({ code: 'custom', path: ['cache'], message: why });
    } else {
      for (const field of ['cacheNamespace', 'cacheTtl', 'cacheRefresh'] as const) {
        if (request[field] !== undefined) ctx.addIssue({ code: 'custom', path: [field], message: 'goes with cache: true' });
      }
    }
    if (request.size && (request.aspect || request.tier)) {
      ctx.addIssue({ code: 'custom', path: ['size'], message: 'give either size or aspect (+ tier), not both' });
    }
    if (request.tier && !request.aspect) {
      ctx.addIssue({ code: 'custom', path: ['tier'], message: 'tier needs an aspect' });
    }
  });

/** What callers write (before defaults). */
export type JobRequestInput = z.input<typeof jobRequestSchema>;
/** A validated request (defaults applied, size parsed). */
export type JobRequest = z.output<typeof jobRequestSchema>;
export type WebhookSpec = z.output<typeof webhookSchema>;
