/**
 * Storage faults after an image is paid for: the fleet stops instead of paying for the backlog,
 * the paid images are kept (never given up), and the fleet resumes by itself once a probe write
 * succeeds. Keys storage can never accept park the paid image for an operator.
 */
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { CreateBucketCommand } from '@aws-sdk/client-s3';
import { describe, expect, it } from 'vitest';
import { runCli } from './support/run-cli.js';
import { isTerminal, startStack } from './support/stack.js';
import { startS3rver } from './support/s3rver-server.js';
import { until } from './support/until.js';

const CONCURRENCY = 4;
const THRESHOLD = 3;

describe('storage outages', () => {
  it('stops taking new jobs when storage is down, instead of paying for the backlog, and resumes by itself when a probe write succeeds', async () => {
    const s3 = await startS3rver();
    try {
      await s3.stop();
      await using stack = await startStack({ storage: { s3: { endpoint: s3.endpoint, bucket: s3.bucket } }, worker: { concurrency: CONCURRENCY } });
      const { batchId } = await stack.producer.enqueueMany(Array.from({ length: 30 }, (_, i) => ({ prompt: `A lantern ${i}`, size: '512*512' })));
      await until(async () => (await stack.producer.pauseState()).reason?.code === 'STORAGE_REFUSED', 30_000);
      // Let any job that was in flight at the pause finish its failed store.
      await until(async () => (await stack.producer.queue.getActiveCount()) === 0, 30_000);
      const billedDuringOutage = stack.emulator.stats().imagesGenerated;
      // Threshold failures trip the fleet; at most the jobs already in flight were paid for besides.
      expect(billedDuringOutage).toBeLessThanOrEqual(THRESHOLD + CONCURRENCY);
      expect(await stack.producer.getBatch(batchId)).toMatchObject({ failed: 0, succeeded: 0, pending: 30 });

      await s3.start();
      const status = await stack.waitForBatch(batchId, 60_000);
      expect(status).toMatchObject({ succeeded: 30, failed: 0 });
      expect(stack.emulator.stats().imagesGenerated).toBe(30); // each paid image kept: none paid twice
      expect((await stack.producer.pauseState()).paused).toBe(false);
    } finally {
      await s3.close();
    }
  });

  it('stops at once on a write storage refuses for every key (no such bucket), and resumes when the operator creates it', async () => {
    const s3 = await startS3rver();
    try {
      await using stack = await startStack({ storage: { s3: { endpoint: s3.endpoint, bucket: 'not-created-yet' } }, worker: { concurrency: CONCURRENCY } });
      const { batchId } = await stack.producer.enqueueMany(Array.from({ length: 20 }, (_, i) => ({ prompt: `A kite ${i}`, size: '512*512' })));
      await until(async () => (await stack.producer.pauseState()).reason?.code === 'STORAGE_REFUSED', 30_000);
      await until(async () => (await stack.producer.queue.getActiveCount()) === 0, 30_000);
      expect(stack.emulator.stats().imagesGenerated).toBeLessThanOrEqual(CONCURRENCY);
      const pause = await stack.producer.pauseState();
      expect(pause.reason?.message).toMatch(/NoSuchBucket/);
      expect(pause.reason?.action).toMatch(/probe write/);

      const client = s3.client();
      await client.send(new CreateBucketCommand({ Bucket: 'not-created-yet' }));
      client.destroy();
      expect(await stack.waitForBatch(batchId, 60_000)).toMatchObject({ succeeded: 20, failed: 0 });
      expect(stack.emulator.stats().imagesGenerated).toBe(20);
    } finally {
      await s3.close();
    }
  });

  it('parks a paid image whose key storage can never accept, instead of failing it, and stores it under a new key on `zimage jobs retry`', async () => {
    await using stack = await startStack();
    // `taken` is a file, so `taken/poster.png` can never be a file here (ENOTDIR): deterministic.
    writeFileSync(join(stack.outputDir, 'taken'), 'not a folder');
    const job = await stack.producer.enqueue({ prompt: 'A poster', size: '512*512', key: 'taken/poster.png' });
    const env = { REDIS_URL: stack.redisUrl, ZIMAGE_PREFIX: stack.prefix };
    let listed = '';
    await until(async () => {
      const parked = await runCli(['jobs', 'parked', '--json'], env);
      listed = parked.stdout;
      return parked.stdout.includes(job.jobId);
    }, 30_000, 200);
    const [entry] = (JSON.parse(listed) as { parked: { jobId: string; code: string; action: string }[] }).parked;
    expect(entry).toMatchObject({ jobId: job.jobId, code: 'STORAGE_KEY_INVALID' });
    expect(entry?.action).toContain(`zimage jobs retry ${job.jobId} --key`);
    const view = await stack.producer.getJob(job.jobId);
    expect(view?.state).toBe('delayed'); // kept, with its checkpoint: not failed
    expect(view?.payload.checkpoint?.generated?.imageUrl).toBeTruthy();
    expect((await stack.events()).filter((e) => e.type === 'job.failed')).toHaveLength(0);
    expect((await stack.producer.pauseState()).parkedJobs).toBe(1);

    const retried = await runCli(['jobs', 'retry', job.jobId, '--key', 'free/poster.png'], env);
    expect(retried.code, retried.stderr).toBe(0);
    const done = await stack.waitForJob(job.jobId, isTerminal);
    expect(done.state).toBe('completed');
    expect(done.result?.key).toBe('free/poster.png');
    expect(stack.emulator.stats().imagesGenerated).toBe(1); // stored from the checkpoint, not generated again
    expect((await stack.producer.pauseState()).parkedJobs).toBe(0);
  });

  it('refuses to retry a job that is not parked, naming why', async () => {
    await using stack = await startStack();
    const job = await stack.producer.enqueue({ prompt: 'A cup', size: '512*512' });
    await stack.waitForJob(job.jobId, isTerminal);
    const retried = await runCli(['jobs', 'retry', job.jobId], { REDIS_URL: stack.redisUrl, ZIMAGE_PREFIX: stack.prefix });
    expect(retried.code).toBe(2);
    expect(retried.stderr).toMatch(/REQUEST_INVALID: job .* is completed, not parked/);
  });

  it('answers a cancel of a job whose paid image waits for storage with "storing", and stores it instead of discarding it', async () => {
    const s3 = await startS3rver();
    try {
      await s3.stop();
      await using stack = await startStack({ storage: { s3: { endpoint: s3.endpoint, bucket: s3.bucket } }, worker: { concurrency: 2 } });
      const { batchId, jobs } = await stack.producer.enqueueMany(Array.from({ length: 6 }, (_, i) => ({ prompt: `A bowl ${i}`, size: '512*512' })));
      await until(async () => (await stack.producer.pauseState()).reason?.code === 'STORAGE_REFUSED', 30_000);
      await until(async () => (await stack.producer.queue.getActiveCount()) === 0, 30_000);
      const paid = stack.emulator.stats().imagesGenerated;
      expect(paid).toBeGreaterThan(0);

      const outcome = await stack.producer.cancelBatch(batchId);
      expect(outcome.storing).toBe(paid);
      expect(outcome.cancelled).toBe(jobs.length - paid);

      await s3.start();
      const status = await stack.waitForBatch(batchId, 60_000);
      expect(status).toMatchObject({ succeeded: paid, cancelled: jobs.length - paid, failed: 0 });
      expect(stack.emulator.stats().imagesGenerated).toBe(paid); // nothing discarded, nothing paid twice
    } finally {
      await s3.close();
    }
  });
});
