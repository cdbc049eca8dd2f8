import { describe, expect, it } from 'vitest';
import type { FeedEvent } from '@zimage/producer';
import { eventsStreamKey, isAppError } from '@zimage/shared';
import { startStack } from './support/stack.js';
import { until } from './support/until.js';

/** Generous for a loaded 2-core machine; every wait below ends on a condition long before. */
const BUDGET_MS = 60_000;

async function rejection(promise: Promise<unknown>): Promise<unknown> {
  return promise.then(
    () => {
      throw new Error('expected a rejection');
    },
    (error: unknown) => error,
  );
}

async function collect(feed: AsyncIterable<FeedEvent>, limit = Infinity): Promise<FeedEvent[]> {
  const seen: FeedEvent[] = [];
  for await (const entry of feed) {
    seen.push(entry);
    if (seen.length >= limit) break;
  }
  return seen;
}

describe('producer waits and event feed', () => {
  it('waitForJob resolves with the finished job, also when it finished before the wait began', async () => {
    await using stack = await startStack();
    const { jobId } = await stack.producer.enqueue({ prompt: 'A lighthouse at dawn', size: '512*512' });
    const job = await stack.producer.waitForJob(jobId, { timeoutMs: BUDGET_MS });
    expect(job.state).toBe('completed');
    expect(job.result?.key).toBe(job.payload.key);
    // Already finished: the read model answers at once, no event needed.
    const again = await stack.producer.waitForJob(jobId, { timeoutMs: BUDGET_MS });
    expect(again.finishedAt).toBe(job.finishedAt);
  });

  it('a hundred concurrent waits all resolve, each with its own job', async () => {
    await using stack = await startStack();
    const { jobs } = await stack.producer.enqueueMany(Array.from({ length: 100 }, (_, i) => ({ prompt: `tile ${i}`, size: '512*512' })));
    const views = await Promise.all(jobs.map((job) => stack.producer.waitForJob(job.jobId, { timeoutMs: BUDGET_MS })));
    expect(views.map((v) => v.jobId)).toEqual(jobs.map((j) => j.jobId));
    expect(new Set(views.map((v) => v.state))).toEqual(new Set(['completed']));
  });

  it('waitForJob rejects with WAIT_TIMEOUT when no worker takes the job, JOB_NOT_FOUND for an unknown id, and the reason on abort', async () => {
    await using stack = await startStack({ worker: false });
    const { jobId } = await stack.producer.enqueue({ prompt: 'never taken', size: '512*512' });
    const timeout = await rejection(stack.producer.waitForJob(jobId, { timeoutMs: 200 }));
    expect(isAppError(timeout) && timeout.code).toBe('WAIT_TIMEOUT');
    expect(String((timeout as Error).message)).toContain(jobId);
    const negative = await rejection(stack.producer.waitForJob(jobId, { timeoutMs: -1 }));
    expect(isAppError(negative) && negative.code).toBe('REQUEST_INVALID');
    expect(String((negative as Error).message)).toMatch(/^timeoutMs: /);
    const missing = await rejection(stack.producer.waitForJob('no-such-job', { timeoutMs: BUDGET_MS }));
    expect(isAppError(missing) && missing.code).toBe('JOB_NOT_FOUND');
    const controller = new AbortController();
    const waiting = rejection(stack.producer.waitForJob(jobId, { timeoutMs: BUDGET_MS, signal: controller.signal }));
    const reason = new Error('caller gave up');
    controller.abort(reason);
    expect(await waiting).toBe(reason);
    // The job itself is untouched by a wait that ended.
    expect((await stack.producer.getJob(jobId))?.state).toBe('prioritized');
  });

  it('waitForJob reports a cancelled job as finished (state cancelled)', async () => {
    await using stack = await startStack({ worker: false });
    const { jobId } = await stack.producer.enqueue({ prompt: 'cancel me', size: '512*512' });
    const waiting = stack.producer.waitForJob(jobId, { timeoutMs: BUDGET_MS });
    await stack.producer.cancelJob(jobId);
    expect((await waiting).state).toBe('cancelled');
  });

  it('waitForBatch resolves with the counts once every job has finished', async () => {
    await using stack = await startStack();
    const { batchId } = await stack.producer.enqueueMany([
      { prompt: 'one', size: '512*512' },
      { prompt: 'two', size: '512*512' },
      { prompt: 'three', size: '512*512' },
    ]);
    const batch = await stack.producer.waitForBatch(batchId, { timeoutMs: BUDGET_MS });
    expect(batch).toMatchObject({ total: 3, succeeded: 3, pending: 0 });
    expect(batch.completedAt).toBeDefined();
    const missing = await rejection(stack.producer.waitForBatch('no-such-batch', { timeoutMs: BUDGET_MS }));
    expect(isAppError(missing) && missing.code).toBe('JOB_NOT_FOUND');
  });

  it('events({ batchId }) yields each job event of the batch and its batch.completed, then ends, even when started after the batch finished', async () => {
    await using stack = await startStack();
    const other = await stack.producer.enqueueMany([{ prompt: 'another batch', size: '512*512' }]);
    const { batchId, jobs } = await stack.producer.enqueueMany([
      { prompt: 'one', size: '512*512' },
      { prompt: 'two', size: '512*512' },
    ]);
    const live = collect(stack.producer.events({ batchId }));
    await stack.producer.waitForBatch(batchId, { timeoutMs: BUDGET_MS });
    await stack.producer.waitForBatch(other.batchId, { timeoutMs: BUDGET_MS });
    const late = await collect(stack.producer.events({ batchId }));
    for (const seen of [await live, late]) {
      const types = seen.map((e) => e.event.type);
      expect(types.at(-1)).toBe('batch.completed');
      expect(types.filter((t) => t === 'job.succeeded')).toHaveLength(2);
      const jobIds = seen.flatMap((e) => ('jobId' in e.event.data ? [e.event.data.jobId] : []));
      expect(new Set(jobIds)).toEqual(new Set(jobs.map((j) => j.jobId)));
    }
  });

  it('events({ batchId }) ends when the batch is finished even if the stream no longer holds its events', async () => {
    await using stack = await startStack();
    const { batchId } = await stack.producer.enqueueMany([{ prompt: 'one', size: '512*512' }]);
    await stack.producer.waitForBatch(batchId, { timeoutMs: BUDGET_MS });
    await stack.redis.xtrim(eventsStreamKey(stack.prefix), 'MAXLEN', 0);
    expect(await collect(stack.producer.events({ batchId }))).toEqual([]);
  });

  it('events({ types, from: "now" }) follows new events only, of the types asked for', async () => {
    await using stack = await startStack({ worker: false });
    // A cancelled waiting job publishes job.failed without any worker.
    const before = await stack.producer.enqueue({ prompt: 'before', size: '512*512' });
    await stack.producer.cancelJob(before.jobId);
    const feed = stack.producer.events({ types: ['job.failed'], from: 'now' });
    const first = feed.next();
    // The feed's position is fixed before its first blocking read: wait for that read.
    await until(async () => String(await stack.redis.client('LIST')).includes('cmd=xread'), BUDGET_MS);
    const after = await stack.producer.enqueue({ prompt: 'after', size: '512*512' });
    await stack.producer.cancelJob(after.jobId);
    const entry = await first;
    await feed.return();
    expect(entry.done).toBe(false);
    expect(entry.value && 'jobId' in entry.value.event.data && entry.value.event.data.jobId).toBe(after.jobId);
  });

  it('a group feed acknowledges an event only when the loop asks for the next: the one it stopped on is delivered again', async () => {
    await using stack = await startStack();
    const { batchId, jobs } = await stack.producer.enqueueMany([
      { prompt: 'one', size: '512*512' },
      { prompt: 'two', size: '512*512' },
    ]);
    await stack.producer.waitForBatch(batchId, { timeoutMs: BUDGET_MS });
    const feedOptions = { group: 'billing', consumer: 'billing-1', from: '0' } as const;
    // Stops on the first event without asking for another: it stays pending in the group.
    const [stoppedOn] = await collect(stack.producer.events(feedOptions), 1);
    const resumed = await collect(stack.producer.events({ ...feedOptions, batchId }));
    expect(resumed[0]?.streamId).toBe(stoppedOn?.streamId);
    expect(resumed.map((e) => e.event.type)).toEqual(['job.succeeded', 'job.succeeded', 'batch.completed']);
    expect(new Set(resumed.slice(0, 2).map((e) => 'jobId' in e.event.data && e.event.data.jobId))).toEqual(new Set(jobs.map((j) => j.jobId)));
    // Everything it went through is acknowledged: nothing pending for the group.
    const pending = (await stack.redis.xpending(eventsStreamKey(stack.prefix), 'billing')) as [number, ...unknown[]];
    expect(pending[0]).toBe(0);
  });

  it('an aborted feed rejects with the reason', async () => {
    await using stack = await startStack({ worker: false });
    const controller = new AbortController();
    const reason = new Error('shutting down');
    const feed = collect(stack.producer.events({ signal: controller.signal }));
    setTimeout(() => controller.abort(reason), 20);
    expect(await rejection(feed)).toBe(reason);
  });
});
