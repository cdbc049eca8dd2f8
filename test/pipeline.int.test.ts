import { createHash } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { GetObjectCommand, HeadObjectCommand, type S3Client } from '@aws-sdk/client-s3';
import { describe, expect, it } from 'vitest';
import { checkPngStructure } from '@zimage/worker';
import { dumpRedis } from './support/dump-redis.js';
import { runCli } from './support/run-cli.js';
import { isTerminal, startStack, TEST_API_KEY } from './support/stack.js';
import { startS3rver } from './support/s3rver-server.js';

const sha256 = (bytes: Uint8Array) => createHash('sha256').update(bytes).digest('hex');

async function waitUntilAsync(condition: () => Promise<boolean>, timeoutMs: number): Promise<void> {
  const until = Date.now() + timeoutMs;
  while (!(await condition())) {
    if (Date.now() > until) throw new Error(`condition not met within ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

async function waitUntil(condition: () => boolean, timeoutMs: number): Promise<void> {
  const until = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > until) throw new Error(`condition not met within ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

describe('the pipeline, end to end', () => {
  it('turns a batch into PNGs in a folder, with results, a manifest and one event per job', async () => {
    await using stack = await startStack();
    const { batchId, jobs } = await stack.producer.enqueueMany([
      { prompt: 'Studio photo of a white ceramic mug', size: '512*512', key: 'catalogue/{sku}.png', metadata: { sku: 'MUG-1' } },
      { prompt: '一只坐着的橘猫，开心，写实', aspect: '1:1', tier: '1024', key: 'catalogue/{sku}.png', metadata: { sku: 'CAT-1' } },
      { prompt: 'A red bicycle leaning on a brick wall', size: '768x512', seed: 42, metadata: { sku: 'BIKE-1' } },
    ]);
    const status = await stack.waitForBatch(batchId);
    expect(status).toMatchObject({ total: 3, succeeded: 3, failed: 0, pending: 0 });

    const expectedSizes = [
      { key: 'catalogue/MUG-1.png', width: 512, height: 512 },
      { key: 'catalogue/CAT-1.png', width: 1024, height: 1024 },
      { key: `${batchId}/${jobs[2]?.jobId}.png`, width: 768, height: 512 },
    ];
    for (const [index, expected] of expectedSizes.entries()) {
      const view = await stack.producer.getJob(jobs[index]!.jobId);
      expect(view?.state).toBe('completed');
      const result = view!.result!;
      expect(result.key).toBe(expected.key);
      const bytes = await readFile(join(stack.outputDir, expected.key));
      expect(result.sha256).toBe(sha256(bytes));
      expect(result.bytes).toBe(bytes.length);
      expect(checkPngStructure(bytes)).toEqual({ ok: true, width: expected.width, height: expected.height });
      expect(result).toMatchObject({ width: expected.width, height: expected.height, attempts: 1, regenerations: 0, region: 'singapore' });
      expect(result.requestId).toMatch(/[0-9a-f-]{36}/);
      expect(result.timings.totalMs).toBeGreaterThanOrEqual(result.timings.generateMs);
    }
    expect(stack.emulator.stats()).toMatchObject({ requests: 3, imagesGenerated: 3, downloads: 3 });

    const events = await stack.events();
    expect(events.filter((e) => e.type === 'job.succeeded').map((e) => (e.type === 'job.succeeded' ? e.data.jobId : '')).sort()).toEqual(
      jobs.map((j) => j.jobId).sort(),
    );
    const completed = events.filter((e) => e.type === 'batch.completed');
    expect(completed).toHaveLength(1);
    expect(completed[0]?.data).toMatchObject({ batchId, total: 3, succeeded: 3, failed: 0 });
    expect(new Set(events.map((e) => e.id)).size).toBe(events.length);

    // The API key is never written to Redis (payloads, results, events, markers).
    const dump = await dumpRedis(stack.redis, `${stack.prefix}:*`);
    expect(dump.length).toBeGreaterThan(1000);
    expect(dump).not.toContain(TEST_API_KEY);

    const manifest = await stack.producer.batchResults(batchId);
    expect(manifest.map((m) => [m.line, m.status, m.key])).toEqual([
      [1, 'succeeded', 'catalogue/MUG-1.png'],
      [2, 'succeeded', 'catalogue/CAT-1.png'],
      [3, 'succeeded', expectedSizes[2]!.key],
    ]);
  });

  it('stores to s3:// with content type, job metadata and sha256 as object metadata', async () => {
    const s3 = await startS3rver();
    let client: S3Client | undefined;
    try {
      await using stack = await startStack({ storage: { s3: { endpoint: s3.endpoint, bucket: s3.bucket, prefix: 'renders' } } });
      const job = await stack.producer.enqueue({ prompt: 'A teapot, product photo', size: '512*512', key: 'tea/{sku}.png', metadata: { sku: 'T-1', title: '青花瓷茶壶' } });
      const view = await stack.waitForJob(job.jobId, isTerminal);
      expect(view.state).toBe('completed');
      expect(view.result?.url).toBe(`s3://${s3.bucket}/renders/tea/T-1.png`);

      client = s3.client();
      const object = await client.send(new GetObjectCommand({ Bucket: s3.bucket, Key: 'renders/tea/T-1.png' }));
      const bytes = await object.Body!.transformToByteArray();
      expect(object.ContentType).toBe('image/png');
      expect(sha256(bytes)).toBe(view.result?.sha256);
      expect(checkPngStructure(bytes)).toEqual({ ok: true, width: 512, height: 512 });
      const head = await client.send(new HeadObjectCommand({ Bucket: s3.bucket, Key: 'renders/tea/T-1.png' }));
      expect(head.Metadata?.['sha256']).toBe(view.result?.sha256);
      expect(head.Metadata?.['sku']).toBe('T-1');
      expect(head.Metadata?.['zimage-job-id']).toBe(job.jobId);
      expect((await stack.storage.head('tea/T-1.png'))?.metadata['title']).toBe('青花瓷茶壶');
    } finally {
      client?.destroy();
      await s3.close();
    }
  });

  it('recovers from 5xx, a dropped connection and a non-JSON gateway error without double billing', async () => {
    await using stack = await startStack({ maxAttempts: 6 });
    stack.emulator.failNext('InternalError', 'drop', 'gateway502', 'ModelUnavailable');
    const job = await stack.producer.enqueue({ prompt: 'A lighthouse at dusk', size: '512*512' });
    const view = await stack.waitForJob(job.jobId, isTerminal);
    expect(view.state).toBe('completed');
    expect(view.result?.attempts).toBe(5);
    expect(stack.emulator.stats()).toMatchObject({ requests: 5, imagesGenerated: 1, dropped: 1 });
  });

  it('times out a hung upstream call and retries it (the abandoned call may still be billed)', async () => {
    await using stack = await startStack({ maxAttempts: 3, emulator: { faults: { slowMs: 1500 } }, worker: { requestTimeoutMs: 300 } });
    stack.emulator.failNext('slow');
    const job = await stack.producer.enqueue({ prompt: 'A windmill', size: '512*512' });
    const view = await stack.waitForJob(job.jobId, isTerminal);
    expect(view.state).toBe('completed');
    expect(view.result?.attempts).toBe(2);
    // The emulator finishes (and bills) the abandoned request after its slow answer.
    await waitUntil(() => stack.emulator.stats().clientDisconnects === 1, 5_000);
    expect(stack.emulator.stats()).toMatchObject({ requests: 2, imagesGenerated: 2 });
  });

  it('fails a moderated prompt after exactly one upstream call, with the code in the failure and the event', async () => {
    await using stack = await startStack();
    const job = await stack.producer.enqueue({ prompt: 'a poster zimage-test-unsafe', size: '512*512' });
    const view = await stack.waitForJob(job.jobId, isTerminal);
    expect(view.state).toBe('failed');
    expect(view.failedReason).toMatch(/^UPSTREAM_CONTENT_REJECTED: DashScope DataInspectionFailed \(HTTP 400\)/);
    expect(stack.emulator.stats()).toMatchObject({ requests: 1, imagesGenerated: 0 });
    const failed = (await stack.events()).filter((e) => e.type === 'job.failed');
    expect(failed).toHaveLength(1);
    expect(failed[0]?.data).toMatchObject({ jobId: job.jobId, error: { code: 'UPSTREAM_CONTENT_REJECTED', upstreamCode: 'DataInspectionFailed' } });
  });

  it('gives up after the configured attempts on a persistent transient error, emitting job.failed once', async () => {
    await using stack = await startStack({ maxAttempts: 3 });
    stack.emulator.failNext('InternalError', 'InternalError', 'InternalError', 'InternalError');
    const job = await stack.producer.enqueue({ prompt: 'A kettle', size: '512*512' });
    const view = await stack.waitForJob(job.jobId, isTerminal);
    expect(view.state).toBe('failed');
    expect(view.failedReason).toMatch(/^UPSTREAM_INTERNAL:/);
    expect(stack.emulator.stats()).toMatchObject({ requests: 3, imagesGenerated: 0 });
    expect((await stack.events()).filter((e) => e.type === 'job.failed')).toHaveLength(1);
  });

  it('retries a failed storage write without calling the API again or using attempts', async () => {
    const s3 = await startS3rver();
    try {
      await s3.stop(); // S3 is down when the paid image is to be stored
      // Two attempts only: an outage longer than the attempts' backoff must not lose the image.
      await using stack = await startStack({ storage: { s3: { endpoint: s3.endpoint, bucket: s3.bucket } }, maxAttempts: 2 });
      const job = await stack.producer.enqueue({ prompt: 'A paper lantern', size: '512*512' });
      // Three failed stores in a row also stop the fleet (storage health); the probe resumes it.
      await waitUntil(() => stack.emulator.stats().downloads >= 3, 20_000);
      await s3.start();
      const view = await stack.waitForJob(job.jobId, isTerminal);
      expect(view.state).toBe('completed');
      expect(view.result!.attempts).toBe(1);
      expect(stack.emulator.stats()).toMatchObject({ requests: 1, imagesGenerated: 1 });
      expect(stack.emulator.stats().downloads).toBeGreaterThanOrEqual(4); // three or more failed stores, one generation
    } finally {
      await s3.close();
    }
  });

  it('generates again when the image URL has expired, and counts it', async () => {
    await using stack = await startStack({ emulator: { imageTtlMs: 1 }, worker: { maxRegenerations: 50 } });
    const job = await stack.producer.enqueue({ prompt: 'A glass vase', size: '512*512' });
    await waitUntil(() => stack.emulator.stats().downloadsRejected > 0, 10_000);
    stack.emulator.configure({ imageTtlMs: 60_000 });
    const view = await stack.waitForJob(job.jobId, isTerminal);
    expect(view.state).toBe('completed');
    const stats = stack.emulator.stats();
    expect(view.result!.regenerations).toBeGreaterThanOrEqual(1);
    expect(stats.imagesGenerated).toBe(view.result!.regenerations + 1);
    expect(stats.downloadsRejected).toBe(view.result!.regenerations);
    expect(view.result!.attempts).toBe(1); // regenerating does not use up attempts
  });

  it('generates again at once when OSS says the link has expired, although this host\'s clock says it still lives (no download retries)', async () => {
    // The image host's clock runs 2 h ahead: every 1-hour link is "Request has expired" there.
    await using stack = await startStack({ emulator: { imageTtlMs: 3_600_000, imageHostClockSkewMs: 7_200_000 } });
    const job = await stack.producer.enqueue({ prompt: 'A clock tower', size: '512*512' });
    await waitUntil(() => stack.emulator.stats().downloadsRejected > 0, 10_000);
    stack.emulator.configure({ imageHostClockSkewMs: 0 });
    const view = await stack.waitForJob(job.jobId, isTerminal);
    expect(view.state).toBe('completed');
    expect(view.result!.regenerations).toBe(1);
    expect(stack.emulator.stats()).toMatchObject({ imagesGenerated: 2, downloadsRejected: 1 });
  });

  it('keeps every throttled job in the queue without using attempts, and does not hammer the API', async () => {
    await using stack = await startStack({
      emulator: { quota: { rps: 1, rpm: 1000, burst: { enabled: false } } },
      // Configured at twice what the account allows: the governor starts at half (2 a second) and learns.
      rpm: 240,
      maxAttempts: 2,
    });
    const { batchId } = await stack.producer.enqueueMany(Array.from({ length: 6 }, (_, i) => ({ prompt: `Tile number ${i}`, size: '512*512' })));
    const status = await stack.waitForBatch(batchId, 60_000);
    expect(status).toMatchObject({ succeeded: 6, failed: 0 });
    const stats = stack.emulator.stats();
    expect(stats.throttled).toBeGreaterThan(0);
    expect(stats.imagesGenerated).toBe(6);
    // The worker is paced at 2 a second; throttling never makes it send faster than that.
    expect(stats.peakRequestsPerSecond).toBeLessThanOrEqual(3);
    for (const entry of await stack.producer.batchResults(batchId)) {
      const view = await stack.producer.getJob(entry.jobId);
      expect(view?.result?.attempts).toBe(1);
    }
  });

  it('pauses the queue when a paid image cannot be accepted, keeps it, and finishes after the fix and `zimage resume`', async () => {
    await using stack = await startStack({ worker: { maxImageBytes: 1024 } });
    const job = await stack.producer.enqueue({ prompt: 'A huge poster', size: '512*512' });
    await waitUntilAsync(async () => (await stack.producer.pauseState()).paused, 10_000);
    expect((await stack.producer.pauseState()).reason?.code).toBe('IMAGE_TOO_LARGE');
    expect((await stack.producer.getJob(job.jobId))?.state).not.toBe('failed');
    await stack.worker?.close();

    await stack.startWorker({ maxImageBytes: 20 * 1024 * 1024 });
    const resumed = await runCli(['resume'], { REDIS_URL: stack.redisUrl, ZIMAGE_PREFIX: stack.prefix });
    expect(resumed.code, resumed.stderr).toBe(0);
    const view = await stack.waitForJob(job.jobId, isTerminal);
    expect(view.state).toBe('completed');
    expect(view.result?.attempts).toBe(1);
    expect(stack.emulator.stats().imagesGenerated).toBe(1); // the paid image was kept, not generated again
  });

  it('pauses the queue on an account-wide error instead of failing the backlog, and resumes after the fix', async () => {
    await using stack = await startStack({ emulator: { apiKeys: ['sk-the-real-key-000000'] }, worker: { concurrency: 1 } });
    const { batchId, jobs } = await stack.producer.enqueueMany(Array.from({ length: 5 }, (_, i) => ({ prompt: `Chair ${i}`, size: '512*512' })));
    await waitUntilAsync(async () => (await stack.producer.pauseState()).paused, 10_000);
    const pause = await stack.producer.pauseState();
    expect(pause).toMatchObject({ paused: true, reason: { code: 'UPSTREAM_AUTH_INVALID' } });
    expect(pause.reason?.message).not.toContain('sk-test');
    const status = await stack.producer.getBatch(batchId);
    expect(status).toMatchObject({ failed: 0, succeeded: 0, pending: 5 });
    expect(stack.emulator.stats().requests).toBeLessThanOrEqual(2);
    for (const job of jobs) expect((await stack.producer.getJob(job.jobId))?.state).not.toBe('failed');

    stack.emulator.configure({ apiKeys: [TEST_API_KEY] }); // the operator fixes the key
    const resumed = await runCli(['resume'], { REDIS_URL: stack.redisUrl, ZIMAGE_PREFIX: stack.prefix });
    expect(resumed.code, resumed.stderr).toBe(0);
    expect(resumed.stderr).toMatch(/accounts enabled: test/);
    expect(await stack.waitForBatch(batchId)).toMatchObject({ succeeded: 5, failed: 0 });
  });

  it('expires a job whose deadline passed before it started, without calling the API', async () => {
    await using stack = await startStack({ worker: false });
    const deadline = Date.now() + 1_000;
    const job = await stack.producer.enqueue({ prompt: 'A clock', size: '512*512', deadline: new Date(deadline).toISOString() });
    await waitUntil(() => Date.now() > deadline + 50, 5_000);
    await stack.startWorker();
    const view = await stack.waitForJob(job.jobId, isTerminal);
    expect(view.state).toBe('failed');
    expect(view.failedReason).toMatch(/^JOB_EXPIRED:/);
    expect(stack.emulator.stats().requests).toBe(0);
    const events = await stack.events();
    expect(events.map((e) => e.type)).toEqual(['job.expired']);
  });
});
