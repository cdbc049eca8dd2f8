/**
 * A batch's lifecycle events through real workers and the emulator: `batch.first_failure` once,
 * with the failing job and its code, right after that job's `job.failed`; `batch.exhausted` (the
 * counts and failures by code) just before `batch.completed` when jobs failed; neither for a
 * clean or a cancelled batch; the counters in `getBatch`.
 */
import { describe, expect, it } from 'vitest';
import type { ZimageEvent } from '@zimage/shared';
import { startStack } from './support/stack.js';

const BUDGET_MS = 60_000;

function ofBatch(events: ZimageEvent[], batchId: string): ZimageEvent[] {
  return events.filter((e) => 'batchId' in e.data && e.data.batchId === batchId);
}

describe('batch lifecycle events', () => {
  it('announces the first failure once, and an exhausted batch with its failures by code before batch.completed', async () => {
    await using stack = await startStack();
    const prompts = ['A teapot', 'zimage-test-unsafe cup', 'A saucer', 'zimage-test-unsafe spoon', 'A plate'];
    const { batchId, jobs } = await stack.producer.enqueueMany(prompts.map((prompt) => ({ prompt, size: '512*512' })));
    await stack.waitForBatch(batchId, BUDGET_MS);

    const events = ofBatch(await stack.events(), batchId);
    const types = events.map((e) => e.type);
    expect(types.filter((t) => t === 'batch.first_failure')).toHaveLength(1);
    expect(types.slice(-2)).toEqual(['batch.exhausted', 'batch.completed']);
    // Right after the job.failed it announces.
    const first = events.findIndex((e) => e.type === 'batch.first_failure');
    const announced = events[first] as Extract<ZimageEvent, { type: 'batch.first_failure' }>;
    expect(events[first - 1]).toMatchObject({ type: 'job.failed', data: { jobId: announced.data.jobId } });
    expect(announced.data.error.code).toBe('UPSTREAM_CONTENT_REJECTED');
    expect([jobs[1]?.jobId, jobs[3]?.jobId]).toContain(announced.data.jobId);

    const exhausted = events.at(-2) as Extract<ZimageEvent, { type: 'batch.exhausted' }>;
    expect(exhausted.data).toEqual({ batchId, total: 5, succeeded: 3, failed: 2, expired: 0, cancelled: 0, failedByCode: { UPSTREAM_CONTENT_REJECTED: 2 } });
    const status = await stack.producer.getBatch(batchId);
    expect(status?.failedByCode).toEqual({ UPSTREAM_CONTENT_REJECTED: 2 });
    expect(status?.firstFailureAt).toBe(announced.timestamp);
  });

  it('publishes neither for a batch whose jobs all succeeded, nor for one that was cancelled', async () => {
    await using stack = await startStack({ worker: false });
    const clean = await stack.producer.enqueueMany([{ prompt: 'A lamp', size: '512*512' }, { prompt: 'A rug', size: '512*512' }]);
    const cancelled = await stack.producer.enqueueMany([{ prompt: 'A chair', size: '512*512' }]);
    await stack.producer.cancelBatch(cancelled.batchId);
    await stack.startWorker();
    await stack.waitForBatch(clean.batchId, BUDGET_MS);
    await stack.waitForBatch(cancelled.batchId, BUDGET_MS);
    const events = await stack.events();
    for (const batchId of [clean.batchId, cancelled.batchId]) {
      const types = ofBatch(events, batchId).map((e) => e.type);
      expect(types.at(-1)).toBe('batch.completed');
      expect(types).not.toContain('batch.first_failure');
      expect(types).not.toContain('batch.exhausted');
      expect((await stack.producer.getBatch(batchId))?.failedByCode).toEqual({});
    }
  });
});
