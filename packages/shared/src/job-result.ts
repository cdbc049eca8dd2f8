import { z } from 'zod';

export const REGIONS = ['singapore', 'beijing'] as const;
export type Region = (typeof REGIONS)[number];

/** What a succeeded job returns (BullMQ return value) and what `job.succeeded` carries. */
export const jobResultSchema = z.object({
  jobId: z.string(),
  key: z.string(),
  url: z.string(),
  bytes: z.number().int(),
  sha256: z.string(),
  width: z.number().int(),
  height: z.number().int(),
  /** The prompt the model actually used: rewritten when `promptExtend` was on. */
  usedPrompt: z.string(),
  /** DashScope `request_id` of the generation that produced this image. */
  requestId: z.string().optional(),
  region: z.enum(REGIONS),
  /** The configured account that generated the image (see ZIMAGE_ACCOUNTS). */
  accountId: z.string().optional(),
  /** Processor runs of this job, including the successful one. */
  attempts: z.number().int(),
  /** Upstream generations beyond the first, each caused by an expired image URL. */
  regenerations: z.number().int(),
  /** True when an identical object was already in storage and the write was skipped. */
  storageSkipped: z.boolean(),
  estimatedCostUsd: z.number(),
  /** True when the image was copied from the render cache: no upstream call, nothing billed. */
  cached: z.boolean().optional(),
  /** For a cached result: the stored image it is a copy of, and what its generation cost (saved here). */
  cachedFrom: z.object({ jobId: z.string(), key: z.string(), requestId: z.string().optional(), savedUsd: z.number() }).optional(),
  timings: z.object({
    queuedMs: z.number(),
    generateMs: z.number(),
    downloadMs: z.number(),
    storeMs: z.number(),
    totalMs: z.number(),
  }),
  completedAt: z.string(),
});
export type JobResult = z.output<typeof jobResultSchema>;

/** List prices per image (reference §4.2), US$. */
export const PRICE_USD: Record<Region, { standard: number; extended: number }> = {
  singapore: { standard: 0.015, extended: 0.03 },
  beijing: { standard: 0.01434, extended: 0.02868 },
};

export function priceOf(region: Region, promptExtend: boolean): number {
  return promptExtend ? PRICE_USD[region].extended : PRICE_USD[region].standard;
}
