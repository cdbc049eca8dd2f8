import { describe, expect, it } from 'vitest';
import { collect, spawnCli } from './support/run-cli.js';
import { isTerminal, startStack, TEST_API_KEY } from './support/stack.js';

describe('graceful shutdown', () => {
  it('on SIGTERM finishes in-flight jobs, exits 0, and loses no job', async () => {
    await using stack = await startStack({ worker: false, emulator: { latency: { minMs: 800, maxMs: 1200 } } });
    const { batchId, jobs } = await stack.producer.enqueueMany(Array.from({ length: 6 }, (_, i) => ({ prompt: `Vase ${i}`, size: '512*512' })));

    const child = spawnCli(['worker'], {
      REDIS_URL: stack.redisUrl,
      ZIMAGE_PREFIX: stack.prefix,
      DASHSCOPE_API_KEY: TEST_API_KEY,
      DASHSCOPE_BASE_URL: stack.emulator.url,
      STORAGE_URL: `file:${stack.outputDir}`,
      ZIMAGE_RPM: '60000',
      ZIMAGE_CONCURRENCY: '3',
      ZIMAGE_SHUTDOWN_TIMEOUT_MS: '20000',
    });
    const exited = collect(child, 60_000);
    const until = Date.now() + 30_000;
    while (stack.emulator.stats().inFlight === 0 && Date.now() < until) await new Promise((r) => setTimeout(r, 20));
    expect(stack.emulator.stats().inFlight).toBeGreaterThan(0);
    child.kill('SIGTERM');
    const result = await exited;
    expect(result.code, result.stderr).toBe(0);

    // Nothing was left half-done: every job is either finished or still waiting, none active.
    for (const job of jobs) expect((await stack.producer.getJob(job.jobId))?.state).not.toBe('active');
    const billedAtShutdown = stack.emulator.stats().imagesGenerated;
    expect(billedAtShutdown).toBeGreaterThan(0);

    await stack.startWorker();
    const status = await stack.waitForBatch(batchId);
    expect(status).toMatchObject({ succeeded: 6, failed: 0 });
    expect(stack.emulator.stats().imagesGenerated).toBe(6); // no image paid for twice
    for (const job of jobs) {
      const view = await stack.waitForJob(job.jobId, isTerminal);
      expect(view.result?.attempts).toBe(1);
    }
  });
});
