/**
 * A key the store cannot take is refused at enqueue, before an image is generated and billed for
 * it: a file name over 255 bytes on any store, and prefix + key over S3's 1024 bytes.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomUUID } from 'node:crypto';
import { afterAll, describe, expect, inject, it } from 'vitest';
import { Redis } from 'ioredis';
import { createProducer, ingestBatchFile } from '@zimage/producer';
import { isAppError, parseStorageUrl, storageKeyLimits } from '@zimage/shared';
import { runCli } from './support/run-cli.js';
import { startStack, type Stack } from './support/stack.js';

const dir = mkdtempSync(join(tmpdir(), 'zimage-key-limits-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

// 86 CJK characters are 258 UTF-8 bytes: over the 255 a file name may have on any filesystem.
const LONG_TITLE = '手'.repeat(86);
// The longest prefix STORAGE_URL accepts (512 bytes) leaves 511 bytes for keys.
const S3_PREFIX = 'p'.repeat(512);
// Three 200-byte segments: a safe key on its own (606 bytes), too long after that prefix.
const KEY_TOO_LONG_FOR_PREFIX = `${'k'.repeat(200)}/${'k'.repeat(200)}/${'k'.repeat(200)}.png`;

async function rejection(promise: Promise<unknown>) {
  const error = await promise.then(
    () => undefined,
    (e: unknown) => e,
  );
  if (!isAppError(error)) throw new Error(`expected an AppError, got ${String(error)}`);
  return error;
}

async function expectNothingQueued(stack: Stack): Promise<void> {
  const counts = await stack.producer.queue.getJobCounts();
  expect(Object.values(counts).reduce((a, b) => a + b, 0)).toBe(0);
  expect(await stack.redis.keys(`${stack.prefix}:batch:*`)).toEqual([]);
}

describe('keys the store cannot take are refused at enqueue', () => {
  it('refuses a CSV batch whose line 3 renders a file name over 255 bytes, naming the line, and enqueues nothing', async () => {
    await using stack = await startStack({ worker: false });
    const file = join(dir, `titles-${randomUUID()}.csv`);
    writeFileSync(file, ['sku,title', 'A-1,Mug', `A-2,${LONG_TITLE}`, 'A-3,Bowl'].join('\n'));
    const batchId = `b_${randomUUID().replaceAll('-', '').slice(0, 20)}`;

    const error = await rejection(
      ingestBatchFile(stack.producer, { path: file, batchId, promptTemplate: 'Studio photo of {title}', keyTemplate: 'catalogue/{title}.png' }),
    );

    expect(error.code).toBe('BATCH_INVALID');
    expect(error.message).toBe('1 of 3 rows are invalid; nothing was enqueued');
    expect(error.details['rows']).toEqual([
      { line: 3, issues: [{ field: 'key', message: expect.stringMatching(/segment 2 of 2 is 262 bytes\) \(rule segment-too-long\)$/) }] },
    ]);
    expect(await stack.producer.getBatch(batchId)).toBeNull();
    await expectNothingQueued(stack);
  });

  it('refuses, with keyLimits from STORAGE_URL, keys too long for the S3 prefix in enqueue, enqueueMany and batch files', async () => {
    await using stack = await startStack({ worker: false });
    const keyLimits = storageKeyLimits(parseStorageUrl(`s3://bucket/${S3_PREFIX}`));
    const producer = await createProducer({ redisUrl: stack.redisUrl, prefix: stack.prefix, keyLimits });
    try {
      expect(producer.keyLimits).toBe(keyLimits);

      const single = await rejection(producer.enqueue({ prompt: 'a cat', key: KEY_TOO_LONG_FOR_PREFIX }));
      expect(single.code).toBe('REQUEST_INVALID');
      expect(single.details['issues']).toEqual([{ field: 'key', message: expect.stringContaining('is 606 UTF-8 bytes; this store takes at most 511') }]);
      expect(single.message).toMatch(/the STORAGE_URL prefix "p+…" with its "\/" takes 513 \(rule too-long\)/);

      const many = await rejection(producer.enqueueMany([{ prompt: 'a cat', key: 'ok.png' }, { prompt: 'a dog', key: KEY_TOO_LONG_FOR_PREFIX }]));
      expect(many.code).toBe('BATCH_INVALID');
      expect(many.details['items']).toEqual([{ index: 1, issues: [{ field: 'key', message: expect.stringContaining('rule too-long') }] }]);

      const file = join(dir, `keys-${randomUUID()}.csv`);
      writeFileSync(file, ['sku,key', 'A-1,catalogue/a.png', `A-2,${KEY_TOO_LONG_FOR_PREFIX}`].join('\n'));
      const batch = await rejection(ingestBatchFile(producer, { path: file, promptTemplate: 'Studio photo of {sku}' }));
      expect(batch.code).toBe('BATCH_INVALID');
      expect(batch.details['rows']).toEqual([{ line: 3, issues: [{ field: 'key', message: expect.stringContaining('this store takes at most 511') }] }]);

      // The same requests pass a producer that was not told about the prefix (today's default).
      expect((await stack.producer.enqueue({ prompt: 'a cat', key: KEY_TOO_LONG_FOR_PREFIX })).key).toBe(KEY_TOO_LONG_FOR_PREFIX);
    } finally {
      await producer.close();
    }
  });

  it('zimage batch and enqueue read STORAGE_URL and refuse keys too long for its prefix, naming line 3, enqueuing nothing', async () => {
    const redisUrl = inject('redisUrl');
    const prefix = `k${randomUUID().slice(0, 8)}`;
    const env = { REDIS_URL: redisUrl, ZIMAGE_PREFIX: prefix, STORAGE_URL: `s3://bucket/${S3_PREFIX}` };
    const file = join(dir, `cli-${randomUUID()}.csv`);
    writeFileSync(file, ['sku,key', 'A-1,catalogue/a.png', `A-2,${KEY_TOO_LONG_FOR_PREFIX}`].join('\n'));
    const redis = new Redis(redisUrl);
    try {
      const batch = await runCli(['batch', file, '--prompt-template', 'Studio photo of {sku}'], env);
      expect(batch.code, batch.stderr).toBe(2);
      expect(batch.stderr).toMatch(/1 of 2 rows are invalid; nothing was enqueued/);
      expect(batch.stderr).toMatch(/line 3: key: Object key "k+…" is 606 UTF-8 bytes; this store takes at most 511: .*STORAGE_URL prefix "p+…"/);

      const single = await runCli(['enqueue', '--prompt', 'a cat', '--key', KEY_TOO_LONG_FOR_PREFIX], env);
      expect(single.code, single.stderr).toBe(2);
      expect(single.stderr).toMatch(/key: Object key .* is 606 UTF-8 bytes; this store takes at most 511/);

      // No job and no batch record (the queue's own meta and the event stream exist from the start).
      const keys = await redis.keys(`${prefix}:*`);
      expect(keys.filter((k) => /:generate:([0-9a-f-]{36}|idem-.*)$|:batch:/.test(k))).toEqual([]);
      expect(await redis.zcard(`${prefix}:generate:prioritized`)).toBe(0);
      expect(await redis.llen(`${prefix}:generate:wait`)).toBe(0);
    } finally {
      const keys = await redis.keys(`${prefix}:*`);
      if (keys.length > 0) await redis.del(...keys);
      redis.disconnect();
    }
  });
});
