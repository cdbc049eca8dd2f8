import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { ingestBatchFile } from '@zimage/producer';
import { isAppError } from '@zimage/shared';
import { startStack } from './support/stack.js';

const dir = mkdtempSync(join(tmpdir(), 'zimage-producer-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

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
        // An untyped caller's unknown field: refused at run time as it is at compile time.
        // @ts-expect-error extra is not a field of JobRequestInput
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

  it('refuses rows of one batch that would write the same object or share an idempotency key', async () => {
    await using stack = await startStack({ worker: false });
    const error = await rejection(
      stack.producer.enqueueMany([
        { prompt: 'a', key: 'same.png' },
        { prompt: 'b', key: 'same.png' },
        { prompt: 'c', idempotencyKey: 'k1' },
        { prompt: 'c', idempotencyKey: 'k1' },
      ]),
    );
    const items = error.details['items'] as { index: number; issues: { field: string; message: string }[] }[];
    expect(items.map((i) => [i.index, i.issues[0]?.field])).toEqual([
      [1, 'key'],
      [3, 'idempotencyKey'],
    ]);

    const file = join(dir, 'dupes.csv');
    writeFileSync(file, 'sku,title\nA,Mug\nB,Cup\nA,Bowl\n');
    const csv = await rejection(ingestBatchFile(stack.producer, { path: file, promptTemplate: 'Photo of {title}', keyTemplate: 'c/{sku}.png' }));
    expect(csv.details['rows']).toEqual([{ line: 4, issues: [{ field: 'key', message: '"c/A.png" is also the key of line 2' }] }]);
  });

  it('does not add a row again whose idempotency key is already queued, and still completes both batches', async () => {
    await using stack = await startStack();
    const file = join(dir, 'idem.csv');
    writeFileSync(file, 'sku,idempotency_key\nA,order-1-A\nB,order-1-B\n');
    const options = { path: file, promptTemplate: 'Photo of {sku}', keyTemplate: 'i/{sku}.png', defaults: { size: '512*512' } };
    const first = await ingestBatchFile(stack.producer, options);
    const second = await ingestBatchFile(stack.producer, options);
    expect(first).toMatchObject({ enqueued: 2, alreadyQueued: 0 });
    expect(second).toMatchObject({ enqueued: 0, alreadyQueued: 2 });
    expect(await stack.waitForBatch(first.batchId)).toMatchObject({ total: 2, succeeded: 2 });
    expect(await stack.waitForBatch(second.batchId)).toMatchObject({ total: 0, pending: 0 });
    expect(stack.emulator.stats().imagesGenerated).toBe(2);
  });

  it('counts a job added to an existing batch, and refuses a completed or unknown batch', async () => {
    await using stack = await startStack();
    const { batchId } = await stack.producer.enqueueMany([{ prompt: 'first', size: '512*512' }]);
    await stack.producer.enqueue({ prompt: 'second', size: '512*512', batchId });
    expect(await stack.waitForBatch(batchId)).toMatchObject({ total: 2, succeeded: 2 });
    expect((await rejection(stack.producer.enqueue({ prompt: 'late', batchId }))).message).toMatch(/completed/);
    expect((await rejection(stack.producer.enqueue({ prompt: 'x', batchId: 'nope' }))).message).toMatch(/no batch nope/);
    expect((await stack.events()).filter((e) => e.type === 'batch.completed')).toHaveLength(1);
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
