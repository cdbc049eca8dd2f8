/**
 * The render cache's step, before any upstream call: a job that asked for the cache, and whose
 * request determines its image, gets a copy of an image already stored for the same request hash,
 * inside the store. Nothing is billed. A miss (no entry, or its image gone or changed in storage)
 * leaves the job to be generated as usual; the entry of a vanished image is forgotten.
 */
import { isAppError, renderHash, toAppError, type JobResult, type Storage, type StoredObject } from '@zimage/shared';
import type { JobContext } from './job-context.js';
import type { RenderCacheIndex } from './render-cache-index.js';
import type { StepOutcome } from './step-outcome.js';
import type { StorageHealth } from './storage-health.js';

export interface ServeFromCacheDeps {
  storage: Storage;
  index: RenderCacheIndex;
  storageHealth: StorageHealth;
}

/** A failed copy goes back to the queue after this long (plus jitter), using no attempt: nothing was paid. */
const COPY_RETRY_MS = 1_000;

/** The job's result from the cache, or undefined when it must be generated. */
export async function serveFromCache(deps: ServeFromCacheDeps, ctx: JobContext): Promise<StepOutcome | undefined> {
  const { job, payload } = ctx;
  const cache = payload.cache;
  if (!cache || cache.refresh) return undefined;
  const hash = renderHash(payload);
  if (hash === undefined) return undefined;
  const hit = await deps.index.lookup(cache.namespace, hash);
  if (!hit) return undefined;
  const { entry } = hit;

  const started = Date.now();
  const metadata: Record<string, string> = { ...payload.metadata, 'zimage-job-id': String(job.id), 'zimage-cached-from': entry.jobId };
  if (entry.requestId) metadata['zimage-request-id'] = entry.requestId;
  let stored: StoredObject | null;
  try {
    stored = await deps.storage.copy({ from: entry.key, key: payload.key, sha256: entry.sha256, metadata });
  } catch (error) {
    const appError = toAppError(error);
    if (isAppError(error) && appError.code === 'STORAGE_KEY_INVALID') return { kind: 'failed', error: appError, as: 'failed' };
    // Storage is failing for this write: counted with the paid writes, so a store that is down
    // stops the fleet here too, and the job waits without using an attempt.
    await deps.storageHealth.recordFailure(appError);
    ctx.log.warn({ err: appError, from: entry.key }, 'Copying the cached image failed; back to the queue');
    return { kind: 'requeue', delayMs: COPY_RETRY_MS + Math.floor(Math.random() * COPY_RETRY_MS), why: `cached image copy failed (${appError.code})` };
  }
  if (stored === null) {
    ctx.log.info({ from: entry.key }, 'The cached image is gone or was replaced in storage; generating it');
    await deps.index.forget(cache.namespace, hash, hit.raw);
    return undefined;
  }
  deps.storageHealth.recordSuccess();
  const now = Date.now();
  const result: JobResult = {
    jobId: String(job.id),
    key: stored.key,
    url: stored.url,
    bytes: stored.bytes || entry.bytes,
    sha256: entry.sha256,
    width: entry.width,
    height: entry.height,
    usedPrompt: payload.prompt,
    requestId: entry.requestId,
    region: entry.region,
    attempts: job.attemptsMade + 1,
    regenerations: 0,
    storageSkipped: stored.skipped,
    estimatedCostUsd: 0,
    cached: true,
    cachedFrom: { jobId: entry.jobId, key: entry.key, ...(entry.requestId ? { requestId: entry.requestId } : {}), savedUsd: entry.costUsd },
    timings: {
      queuedMs: Math.max(0, (job.processedOn ?? now) - job.timestamp),
      generateMs: 0,
      downloadMs: 0,
      storeMs: now - started,
      totalMs: now - job.timestamp,
    },
    completedAt: new Date(now).toISOString(),
  };
  ctx.log.info({ key: result.key, from: entry.key }, `Stored ${result.key} from the render cache (no upstream call)`);
  return { kind: 'succeeded', result };
}
