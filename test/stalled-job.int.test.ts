/**
 * A job that stalls more often than maxStalledCount (its worker was killed mid-job) is failed by
 * BullMQ when another worker next takes it. That failure never reaches the processor, so the
 * worker's `failed` listener reports it: the same `job.failed` as any failure (code JOB_STALLED),
 * with the job's payload, so its manifest row and its own webhook are not lost.
 */
import { spawn } from 'node:child_process';
import { describe, expect, it } from 'vitest';
import { generateWebhookSecret, parseWebhookSecrets } from '@zimage/shared';
import { createDashscopeClient, startWebhookDispatcher } from '@zimage/worker';
import { REPO_ROOT } from './support/run-cli.js';
import { startStack, TEST_API_KEY } from './support/stack.js';
import { startWebhookReceiver } from './support/webhook-receiver.js';
import { until } from './support/until.js';
import type { WorkerProcessOptions } from './support/generation-worker-process.js';

const JOB_SECRET = generateWebhookSecret();

describe('a job that stalled too often', () => {
  it('is reported as job.failed JOB_STALLED with its payload: manifest row (line) and its own webhook', async () => {
    // The upstream call outlasts the test: the job is surely in flight when its worker dies.
    await using stack = await startStack({ worker: false, webhookAllowedHosts: ['127.0.0.1'], emulator: { latency: { minMs: 300_000, maxMs: 300_000 } } });
    const receiver = await startWebhookReceiver(JOB_SECRET);
    const dispatcher = await startWebhookDispatcher({
      redisUrl: stack.redisUrl,
      prefix: stack.prefix,
      logger: stack.workerOptions.logger,
      endpoints: [],
      jobSecretKeys: parseWebhookSecrets(JOB_SECRET),
      policy: { allowedHosts: ['127.0.0.1'] },
      retrySchedule: [150, 300],
      timeoutMs: 2_000,
      concurrency: 2,
    });
    try {
      const { batchId, jobs } = await stack.producer.enqueueMany([
        { prompt: 'A vase on a table that never finishes', size: '512*512', metadata: { sku: 'VASE-1' }, webhook: { url: `${receiver.url}/jobs` } },
      ]);
      const jobId = jobs[0]!.jobId;

      // The first worker, in a process of its own, takes the job; then it "crashes".
      const options: WorkerProcessOptions = {
        redisUrl: stack.redisUrl,
        prefix: stack.prefix,
        baseUrl: stack.emulator.url,
        apiKey: TEST_API_KEY,
        outputDir: stack.outputDir,
        lockDurationMs: 1_000,
        stalledIntervalMs: 250,
      };
      const child = spawn(process.execPath, ['--conditions=zimage-source', '--import', 'tsx', 'test/support/generation-worker-process.ts'], {
        cwd: REPO_ROOT,
        env: { PATH: process.env['PATH'] ?? '', HOME: process.env['HOME'] ?? '/tmp', ZIMAGE_TEST_WORKER: JSON.stringify(options) },
        stdio: ['ignore', 'pipe', 'inherit'],
      });
      const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
      try {
        await until(() => stack.emulator.stats().inFlight > 0 || child.exitCode !== null, 60_000);
        expect(child.exitCode, 'the first worker exited before taking the job').toBeNull();
        expect((await stack.producer.getJob(jobId))?.state).toBe('active');
      } finally {
        child.kill('SIGKILL');
        await exited;
      }

      // A second worker's stalled check finds the dead worker's job without a lock; with
      // maxStalledCount 0 its first stall is one too many, and BullMQ fails it when it is next taken.
      await stack.startWorker({ stalledIntervalMs: 250, maxStalledCount: 0 });
      const status = await stack.waitForBatch(batchId, 60_000);
      expect(status).toMatchObject({ failed: 1, succeeded: 0 });

      const failed = (await stack.events()).filter((e) => e.type === 'job.failed');
      expect(failed).toHaveLength(1);
      expect(failed[0]!.data).toMatchObject({ jobId, batchId, metadata: { sku: 'VASE-1' }, error: { code: 'JOB_STALLED' } });
      expect((failed[0]!.data as { error: { message: string } }).error.message).toMatch(/stalled/);

      const manifest = await stack.producer.batchResults(batchId);
      expect(manifest).toEqual([expect.objectContaining({ jobId, line: 1, status: 'failed', errorCode: 'JOB_STALLED' })]);

      await receiver.waitFor((received) => received.some((d) => d.payload?.type === 'job.failed'), 30_000);
      const delivery = receiver.received.find((d) => d.payload?.type === 'job.failed')!;
      expect(delivery.verifyError).toBeUndefined();
      expect(delivery.path).toBe('/jobs');
      expect(delivery.payload?.data).toMatchObject({ jobId, error: { code: 'JOB_STALLED' } });
      // Nothing was generated twice: the second worker never called the upstream.
      expect(stack.emulator.stats().imagesGenerated).toBe(0);
    } finally {
      await dispatcher.close();
      await receiver.close();
    }
  });

  it('is not failed when it holds a paid image: it goes back to the queue and is stored from its checkpoint', async () => {
    await using stack = await startStack({ worker: false });
    // A real paid image: generated by the emulator, checkpointed on the job.
    const client = createDashscopeClient({ baseUrl: stack.emulator.url, apiKey: TEST_API_KEY, connectTimeoutMs: 2_000, requestTimeoutMs: 10_000 });
    const output = await client.generate({ prompt: 'A paid bowl', width: 512, height: 512, promptExtend: false });
    await client.close();
    const { jobs } = await stack.producer.enqueueMany([{ prompt: 'A paid bowl', size: '512*512' }]);
    const jobId = jobs[0]!.jobId;
    const job = await stack.producer.queue.getJob(jobId);
    await job!.updateData({ ...job!.data, checkpoint: { regenerations: 0, generated: { imageUrl: output.imageUrl, usedPrompt: output.usedPrompt, width: 512, height: 512, at: Date.now(), generateMs: 1 } } });

    // A worker that takes the job and dies with it (its lock is never renewed again).
    const child = spawn(process.execPath, ['--conditions=zimage-source', '--import', 'tsx', 'test/support/hanging-worker-process.ts'], {
      cwd: REPO_ROOT,
      env: { PATH: process.env['PATH'] ?? '', HOME: process.env['HOME'] ?? '/tmp', ZIMAGE_TEST_REDIS_URL: stack.redisUrl, ZIMAGE_TEST_PREFIX: stack.prefix },
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
    let out = '';
    child.stdout.on('data', (chunk: Buffer) => (out += chunk.toString()));
    try {
      await until(() => out.includes('taken') || child.exitCode !== null, 60_000);
      expect(child.exitCode, 'the hanging worker exited before taking the job').toBeNull();
    } finally {
      child.kill('SIGKILL');
      await exited;
    }

    await stack.startWorker({ stalledIntervalMs: 250, maxStalledCount: 0 });
    // (It is "failed" for a moment, between BullMQ's stall limit and the worker's re-queue.)
    const view = await stack.waitForJob(jobId, (j) => j.state === 'completed', 60_000);
    expect(view.state).toBe('completed');
    expect(stack.emulator.stats().imagesGenerated).toBe(1); // the one paid for above, stored; none again
    expect((await stack.events()).map((e) => e.type)).toEqual(['job.succeeded', 'batch.completed']);
  });
});
