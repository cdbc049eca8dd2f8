import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { ingestBatchFile } from '@zimage/producer';
import { isAppError } from '@zimage/shared';
import { startStack } from './support/stack.js';

const dir = mkdtempSync(join(tmpdir(), 'zimage-producer-'));

async function rejection(promise: Promise<unknown>) {
  const error = await promise.then(
    () => undefined,
    (e: unknown) => e,
  );
  if (!isAppError(error)) throw new Error(`expected an AppError, got ${String(error)}`);
  return error;
}

describe('producer', () => {
  it('returns the same job for a repeated idempotency key and refuses a different request under it', async () => {
    await using stack = await startStack({ worker: false });
    const request = { prompt: 'A bonsai tree', size: '512*512', idempotencyKey: 'order-42/image-1', metadata: { order: '42' } };
    const first = await stack.producer.enqueue(request);
    const again = await stack.producer.enqueue({ metadata: { order: '42' }, idempotencyKey: 'order-42/image-1', size: '512x512', prompt: ' A bonsai tree ' });
    expect(first.created).toBe(true);
    expect(again).toEqual({ jobId: first.jobId, key: first.key, created: false });
    const conflict = await rejection(stack.producer.enqueue({ ...request, prompt: 'A cactus' }));
    expect(conflict.code).toBe('IDEMPOTENCY_CONFLICT');
    expect(await stack.producer.queue.getJobCounts()).toMatchObject({ prioritized: 1 });
  });

  it('enqueues nothing when one item of a batch is invalid, and names every bad item and field', async () => {
    await using stack = await startStack({ worker: false });
    const error = await rejection(
      stack.producer.enqueueMany([
        { prompt: 'ok', size: '512*512' },
        { prompt: '', size: '512*512' },
        { prompt: 'ok', seed: 2 ** 31 },
        { prompt: 'ok', size: '512*512', extra: true },
      ]),
    );
    expect(error.code).toBe('BATCH_INVALID');
    const items = error.details['items'] as { index: number; issues: { field: string }[] }[];
    expect(items.map((i) => [i.index, i.issues.map((x) => x.field)])).toEqual([
      [1, ['prompt']],
      [2, ['seed']],
      [3, ['extra']],
    ]);
    const counts = await stack.producer.queue.getJobCounts();
    expect(Object.values(counts).reduce((a, b) => a + b, 0)).toBe(0);
    expect(await stack.redis.keys(`${stack.prefix}:batch:*`)).toEqual([]);
  });

  it('ingests a 5,000-row CSV in two streamed passes, every row becoming one job of the batch', async () => {
    await using stack = await startStack({ worker: false });
    const file = join(dir, 'big.csv');
    const rows = ['sku,title,color'];
    for (let i = 0; i < 5000; i++) rows.push(`SKU-${i},Product ${i},${i % 2 ? 'red' : '蓝色'}`);
    writeFileSync(file, rows.join('\n'));
    const phases: string[] = [];
    const report = await ingestBatchFile(stack.producer, {
      path: file,
      promptTemplate: 'Photo of {title} in {color}',
      keyTemplate: 'catalogue/{sku}.png',
      defaults: { size: '512*512' },
      onProgress: (phase) => phases.push(phase),
    });
    expect(report).toMatchObject({ rows: 5000, enqueued: 5000, rejectedCount: 0 });
    expect(phases).toContain('enqueue');
    expect(await stack.producer.getBatch(report.batchId)).toMatchObject({ total: 5000, pending: 5000 });
    const counts = await stack.producer.queue.getJobCounts();
    expect(Object.values(counts).reduce((a, b) => a + b, 0)).toBe(5000);
    const [job] = await stack.producer.queue.getJobs(['prioritized'], 0, 0);
    expect(job?.data.key).toMatch(/^catalogue\/SKU-\d+\.png$/);
    expect(job?.data.metadata).toMatchObject({ sku: expect.stringMatching(/^SKU-/), title: expect.stringMatching(/^Product/) });
  });
});
