/**
 * The render cache through real workers, the emulator and real storage: a seeded request asked
 * with `cache: true` that was generated before is copied in storage instead of being generated
 * (no upstream call, nothing billed); anything that changes the image misses; an image gone or
 * replaced in storage since is generated again; `cacheRefresh` pays once more and re-points the
 * entry; namespaces do not share. S3 copies server-side, with the new job's metadata.
 */
import { rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { HeadObjectCommand, PutObjectCommand } from '@aws-sdk/client-s3';
import type { JobRequestInput, ZimageEvent } from '@zimage/shared';
import { describe, expect, it } from 'vitest';
import { startS3rver } from './support/s3rver-server.js';
import { isTerminal, startStack, type Stack } from './support/stack.js';

const BUDGET_MS = 60_000;
const rows = (n: number, extra: Partial<JobRequestInput> = {}): JobRequestInput[] =>
  Array.from({ length: n }, (_, i) => ({ prompt: `A ceramic vase, style ${i}`, size: '512*512', seed: 1000 + i, cache: true, ...extra }));

async function runBatch(stack: Stack, requests: JobRequestInput[]) {
  const { batchId, jobs } = await stack.producer.enqueueMany(requests);
  const status = await stack.waitForBatch(batchId, BUDGET_MS);
  const views = await Promise.all(jobs.map((j) => stack.waitForJob(j.jobId, isTerminal, BUDGET_MS)));
  return { batchId, status, results: views.map((v) => v.result) };
}

describe('render cache', () => {
  it('serves a re-run of a seeded batch from storage: no upstream call, every image copied under its new key', async () => {
    await using stack = await startStack();
    const first = await runBatch(stack, rows(6));
    expect(first.status.succeeded).toBe(6);
    expect(stack.emulator.stats().requests).toBe(6);
    expect(first.results.every((r) => r?.cached === undefined)).toBe(true);

    const second = await runBatch(stack, rows(6));
    expect(stack.emulator.stats().requests).toBe(6);
    expect(second.status).toMatchObject({ succeeded: 6, cached: 6, costUsd: 0 });
    expect(second.status.savedUsd).toBeCloseTo(6 * 0.015, 6);
    for (const [i, result] of second.results.entries()) {
      const original = first.results[i];
      expect(result).toMatchObject({ cached: true, estimatedCostUsd: 0, sha256: original?.sha256, cachedFrom: { jobId: original?.jobId, key: original?.key, savedUsd: 0.015 } });
      expect(result?.key).not.toBe(original?.key);
      const copy = await stack.storage.read(result?.key ?? '');
      expect(copy && Buffer.from(copy).equals(Buffer.from((await stack.storage.read(original?.key ?? '')) ?? []))).toBe(true);
    }
    const succeeded = (await stack.events()).filter((e): e is Extract<ZimageEvent, { type: 'job.succeeded' }> => e.type === 'job.succeeded' && e.data.batchId === second.batchId);
    expect(succeeded.map((e) => e.data.result.cached)).toEqual(Array(6).fill(true));
  });

  it('misses for anything that changes the image, and never serves a job that did not ask for it', async () => {
    await using stack = await startStack();
    await runBatch(stack, rows(1));
    const variants: JobRequestInput[] = [
      { prompt: 'A ceramic vase, style 0', size: '512*512', seed: 1001, cache: true },
      { prompt: 'A ceramic vase, style 0', size: '768*768', seed: 1000, cache: true },
      { prompt: 'A ceramic vase, style 0!', size: '512*512', seed: 1000, cache: true },
      { prompt: 'A ceramic vase, style 0', size: '512*512', seed: 1000 },
      { prompt: 'A ceramic vase, style 0', size: '512*512', seed: 1000, cache: true, cacheNamespace: 'other' },
    ];
    const run = await runBatch(stack, variants);
    expect(run.results.map((r) => r?.cached)).toEqual([undefined, undefined, undefined, undefined, undefined]);
    expect(stack.emulator.stats().requests).toBe(1 + variants.length);
  });

  it('generates again when the cached image was deleted or replaced in storage, and offers the new one from then on', async () => {
    await using stack = await startStack();
    const first = await runBatch(stack, rows(2));
    await rm(join(stack.outputDir, first.results[0]?.key ?? 'missing'));
    await writeFile(join(stack.outputDir, first.results[1]?.key ?? 'missing'), 'not the image any more');

    const second = await runBatch(stack, rows(2));
    expect(second.results.map((r) => r?.cached)).toEqual([undefined, undefined]);
    expect(stack.emulator.stats().requests).toBe(4);

    const third = await runBatch(stack, rows(2));
    expect(stack.emulator.stats().requests).toBe(4);
    expect(third.results.map((r) => r?.cachedFrom?.jobId)).toEqual(second.results.map((r) => r?.jobId));
  });

  it('pays again with cacheRefresh and points later hits at the refreshed image', async () => {
    await using stack = await startStack();
    await runBatch(stack, rows(1));
    const refreshed = await runBatch(stack, rows(1, { cacheRefresh: true }));
    expect(refreshed.results[0]?.cached).toBeUndefined();
    expect(stack.emulator.stats().requests).toBe(2);
    const later = await runBatch(stack, rows(1));
    expect(later.results[0]?.cachedFrom?.jobId).toBe(refreshed.results[0]?.jobId);
    expect(stack.emulator.stats().requests).toBe(2);
  });

  it('copies inside S3 with the new job’s metadata, and misses when the source object was overwritten', async () => {
    const s3 = await startS3rver();
    const client = s3.client();
    try {
      await using stack = await startStack({ storage: { s3: { endpoint: s3.endpoint, bucket: s3.bucket, prefix: 'renders' } } });
      const first = await runBatch(stack, rows(2, { metadata: { sku: 'V-1' } }));
      const second = await runBatch(stack, rows(2, { metadata: { sku: 'V-2' } }));
      expect(stack.emulator.stats().requests).toBe(2);
      const head = await client.send(new HeadObjectCommand({ Bucket: s3.bucket, Key: `renders/${second.results[0]?.key ?? ''}` }));
      expect(head.Metadata).toMatchObject({ sku: 'V-2', sha256: first.results[0]?.sha256, 'zimage-job-id': second.results[0]?.jobId, 'zimage-cached-from': first.results[0]?.jobId });
      expect(head.ContentType).toBe('image/png');

      // Overwritten by someone else: the entry's sha256 no longer matches, so it is generated again.
      await client.send(new PutObjectCommand({ Bucket: s3.bucket, Key: `renders/${first.results[1]?.key ?? ''}`, Body: 'other bytes', Metadata: { sha256: '0'.repeat(64) } }));
      const third = await runBatch(stack, rows(2, { metadata: { sku: 'V-3' } }));
      expect(third.results.map((r) => r?.cached)).toEqual([true, undefined]);
      expect(stack.emulator.stats().requests).toBe(3);
    } finally {
      client.destroy();
      await s3.close();
    }
  });
});
