/**
 * The render cache's identity of a request: what determines the image, hashed. Only a request
 * whose output is determined by it qualifies: a seed is set and `promptExtend` is off (the
 * upstream rewrites an extended prompt differently each time, and an unseeded call picks its own
 * seed). Producer and worker both use this, so the rule is written once.
 */
import { hash } from 'node:crypto';
import { z } from 'zod';
import { REGIONS } from './job-result.js';

/** The upstream model: part of every render hash, so a change of model never reuses an old image. */
export const UPSTREAM_MODEL = 'z-image-turbo';
export const DEFAULT_CACHE_NAMESPACE = 'default';
/** How long a stored image is offered for reuse, from when it was generated. */
export const DEFAULT_CACHE_TTL_MS = 30 * 86_400_000;
export const MIN_CACHE_TTL_MS = 60_000;
export const MAX_CACHE_TTL_MS = 365 * 86_400_000;

export interface RenderInput {
  prompt: string;
  width: number;
  height: number;
  seed?: number | undefined;
  promptExtend: boolean;
}

/** Why a request cannot use the cache, or undefined when it can. */
export function whyNotCacheable(request: Pick<RenderInput, 'seed' | 'promptExtend'>): string | undefined {
  if (request.promptExtend) return 'needs promptExtend: false (an extended prompt is rewritten differently on every call, so its image is not determined by the request)';
  if (request.seed === undefined) return 'needs a seed (without one the upstream picks its own, so the image is not determined by the request)';
  return undefined;
}

/** sha256 of what determines the image, or undefined when the request does not determine it. */
export function renderHash(request: RenderInput): string | undefined {
  if (whyNotCacheable(request) !== undefined) return undefined;
  // A fixed field order and JSON escaping: the prompt cannot forge a boundary.
  const identity = JSON.stringify([UPSTREAM_MODEL, request.prompt, request.width, request.height, request.seed]);
  return hash('sha256', identity, 'hex');
}

/** One entry per namespace and render hash; the value is a `RenderCacheEntry` (JSON). */
export function renderCacheKey(prefix: string, namespace: string, renderHashHex: string): string {
  return `${prefix}:render-cache:${namespace}:${renderHashHex}`;
}

/** What the index remembers of a stored image: enough to copy it and to describe the copy. */
export const renderCacheEntrySchema = z.object({
  /** The object key it was stored under. */
  key: z.string().min(1),
  sha256: z.string().regex(/^[0-9a-f]{64}$/),
  bytes: z.number().int().nonnegative(),
  width: z.number().int().positive(),
  height: z.number().int().positive(),
  region: z.enum(REGIONS),
  requestId: z.string().optional(),
  /** The job that paid for it. */
  jobId: z.string(),
  /** What that generation cost, US$ (what each reuse saves). */
  costUsd: z.number().nonnegative(),
  /** Epoch ms of the generation. */
  at: z.number(),
});
export type RenderCacheEntry = z.output<typeof renderCacheEntrySchema>;
