/**
 * A job id comes from its idempotency key, so the same id can come back: re-submitted after a
 * cancel, or re-run after retention removed the finished job. Markers left by the earlier job
 * (its cancel flag, its "event published" marker) must not touch the new one.
 */
import { describe, expect, it } from 'vitest';
import { isTerminal, startStack } from './support/stack.js';
import { until } from './support/until.js';

describe('re-used job ids', () => {
  it('runs a job re-submitted after its cancel, publishing its own job.succeeded and completing its batch', async () => {
    await using stack = await startStack({ worker: false });
    const rows = Array.from({ length: 3 }, (_, i) => ({ prompt: `A teapot ${i}`, size: '512*512', idempotencyKey: `teapot-${i}` }));
    const first = await stack.producer.enqueueMany(rows);
    expect(await stack.producer.cancelBatch(first.batchId)).toMatchObject({ cancelled: 3 });
    expect(await stack.waitForBatch(first.batchId)).toMatchObject({ cancelled: 3 });

    await stack.startWorker();
    const second = await stack.producer.enqueueMany(rows);
    expect(second.jobs.map((j) => j.jobId)).toEqual(first.jobs.map((j) => j.jobId));
    expect(await stack.waitForBatch(second.batchId)).toMatchObject({ succeeded: 3, cancelled: 0, failed: 0 });
    const succeeded = (await stack.events()).filter((e) => e.type === 'job.succeeded');
    expect(succeeded.map((e) => e.data.jobId).sort()).toEqual(first.jobs.map((j) => j.jobId).sort());
    expect(stack.emulator.stats().imagesGenerated).toBe(3);
  });

  it('runs again a job cancelled while it was running, when its idempotency key is submitted again', async () => {
    await using stack = await startStack({ emulator: { latency: { minMs: 30_000, maxMs: 30_000 } } });
    const request = { prompt: 'A slow sculpture', size: '512*512', idempotencyKey: 'sculpture-1' };
    const job = await stack.producer.enqueue(request);
    await until(() => stack.emulator.stats().inFlight > 0, 30_000);
    expect((await stack.producer.cancelJob(job.jobId)).state).toBe('cancelling');
    await stack.waitForJob(job.jobId, (j) => j.state === 'cancelled');

    stack.emulator.configure({ latency: { minMs: 5, maxMs: 20 } });
    const again = await stack.producer.enqueue(request);
    expect(again).toMatchObject({ jobId: job.jobId, created: true });
    const view = await stack.waitForJob(job.jobId, (j) => j.state === 'completed', 30_000);
    expect(view.result?.key).toBeTruthy();
    expect((await stack.events()).map((e) => e.type)).toEqual(['job.failed', 'job.succeeded']);
  });

  it('publishes job.succeeded for a job re-run under the same id after retention removed the first run, under an event id of its own', async () => {
    await using stack = await startStack();
    const request = { prompt: 'A lamp', size: '512*512', idempotencyKey: 'lamp-1' };
    const first = await stack.producer.enqueueMany([request]);
    await stack.waitForBatch(first.batchId);
    const jobId = first.jobs[0]!.jobId;
    await stack.producer.queue.remove(jobId); // what retention does after 7 days; the marker lives 14

    const second = await stack.producer.enqueueMany([request]);
    expect(second.jobs[0]).toMatchObject({ jobId, created: true });
    expect(await stack.waitForBatch(second.batchId)).toMatchObject({ succeeded: 1 });
    const events = (await stack.events()).filter((e) => e.type === 'job.succeeded');
    expect(events.map((e) => e.data.jobId)).toEqual([jobId, jobId]);
    expect(new Set(events.map((e) => e.id)).size).toBe(2);
  });

  it('still publishes one event per run: a repeat of the same run is a duplicate', async () => {
    await using stack = await startStack();
    const job = await stack.producer.enqueue({ prompt: 'A bench', size: '512*512', idempotencyKey: 'bench-1' });
    await stack.waitForJob(job.jobId, isTerminal);
    const bull = await stack.producer.queue.getJob(job.jobId);
    // The same incarnation retrying its publication (a crash after publishing) changes nothing.
    await stack.producer.queue.remove(job.jobId);
    await stack.producer.queue.add('generate', bull!.data, { jobId: job.jobId, timestamp: bull!.timestamp });
    await stack.waitForJob(job.jobId, isTerminal);
    expect((await stack.events()).filter((e) => e.type === 'job.succeeded')).toHaveLength(1);
  });
});
