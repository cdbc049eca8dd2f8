import { randomUUID } from 'node:crypto';
import { setTimeout as delay } from 'node:timers/promises';
import { Redis } from 'ioredis';
import { afterAll, describe, expect, inject, it } from 'vitest';
import {
  consumeEvents,
  ensureConsumerGroup,
  readEvents,
  replayGroupFrom,
  streamIdAt,
  type DeadLetter,
  type EventConsumerOptions,
  type StreamEvent,
} from './event-consumer.js';
import { eventIdFor, type BatchCompletedEvent, type JobSucceededEvent } from './events.js';
import { eventsStreamKey } from './queue-names.js';

// Provided by test/support/global-setup.ts (outside this package's tsconfig, hence repeated here).
declare module 'vitest' {
  export interface ProvidedContext {
    redisUrl: string;
  }
}

const redisUrl = inject('redisUrl');
const connections: Redis[] = [];

/** One connection per consumer: XREADGROUP BLOCK occupies it. */
function connect(): Redis {
  const redis = new Redis(redisUrl, { maxRetriesPerRequest: null });
  connections.push(redis);
  return redis;
}

afterAll(async () => {
  await Promise.all(connections.map((redis) => redis.quit()));
});

const admin = connect();
const uniquePrefix = (): string => `evc-${randomUUID().slice(0, 8)}`;

function succeeded(jobId: string, batchId?: string): JobSucceededEvent {
  return {
    id: eventIdFor('job.succeeded', jobId),
    version: 1,
    type: 'job.succeeded',
    timestamp: '2024-11-24T00:00:00.000Z',
    data: {
      jobId,
      ...(batchId ? { batchId } : {}),
      metadata: { row: jobId },
      result: {
        jobId,
        key: `images/${jobId}.png`,
        url: `https://example.test/${jobId}.png`,
        bytes: 1234,
        sha256: 'ab'.repeat(32),
        width: 1024,
        height: 1024,
        usedPrompt: 'a cat',
        region: 'singapore',
        attempts: 1,
        regenerations: 0,
        storageSkipped: false,
        estimatedCostUsd: 0.015,
        timings: { queuedMs: 1, generateMs: 2, downloadMs: 3, storeMs: 4, totalMs: 10 },
        completedAt: '2024-11-24T00:00:00.000Z',
      },
    },
  };
}

function batchCompleted(batchId: string): BatchCompletedEvent {
  return {
    id: eventIdFor('batch.completed', batchId),
    version: 1,
    type: 'batch.completed',
    timestamp: '2024-11-24T00:00:00.000Z',
    data: { batchId, total: 2, succeeded: 2, failed: 0, expired: 0, cancelled: 0 },
  };
}

/** XADDs like the worker's publisher (type, id, event[, extra fields]); returns the stream id. */
async function publish(prefix: string, event: JobSucceededEvent | BatchCompletedEvent, extra: Record<string, string> = {}, id = '*'): Promise<string> {
  const fields = ['type', event.type, 'id', event.id, 'event', JSON.stringify(event), ...Object.entries(extra).flat()];
  return (await admin.xadd(eventsStreamKey(prefix), 'MAXLEN', '~', 1000, id, ...fields)) as string;
}

async function publishJobs(prefix: string, count: number, from = 1): Promise<string[]> {
  const ids: string[] = [];
  for (let i = from; i < from + count; i++) ids.push(await publish(prefix, succeeded(`job-${i}`)));
  return ids;
}

async function pendingCount(prefix: string, group: string): Promise<number> {
  const summary = (await admin.xpending(eventsStreamKey(prefix), group)) as [number, ...unknown[]];
  return Number(summary[0]);
}

async function waitFor(condition: () => boolean | Promise<boolean>, what: string, timeoutMs = 5_000): Promise<void> {
  const until = Date.now() + timeoutMs;
  while (!(await condition())) {
    if (Date.now() > until) throw new Error(`timed out waiting for ${what}`);
    await delay(10);
  }
}

const jobIdOf = (event: StreamEvent): string =>
  event.event.type === 'batch.completed' || event.event.type === 'batch.exhausted'
    ? event.event.data.batchId
    : event.event.type === 'schedule.failed'
      ? event.event.data.scheduleId
      : event.event.type === 'budget.exhausted' || event.event.type === 'budget.warning'
        ? event.event.data.budgetId
        : event.event.data.jobId;

/** Starts a consumer on its own connection with fast test timings; `stop()` aborts and awaits it. */
function startConsumer(
  prefix: string,
  options: Partial<EventConsumerOptions> & { consumer: string },
  handler: (event: StreamEvent) => Promise<void>,
): { stop: () => Promise<void>; done: Promise<void>; controller: AbortController } {
  const controller = new AbortController();
  const done = consumeEvents(
    { redis: connect(), prefix, group: 'g', startId: '0', blockMs: 50, retryDelayMs: 50, signal: controller.signal, ...options },
    handler,
  );
  return {
    controller,
    done,
    stop: async () => {
      controller.abort();
      await done;
    },
  };
}

describe('consumeEvents', () => {
  it('shares the events between two consumers of one group, each delivered once and acked', async () => {
    const prefix = uniquePrefix();
    await ensureConsumerGroup(admin, prefix, 'g', '$');
    const seen: Record<string, string[]> = { a: [], b: [] };
    const make = (name: 'a' | 'b') => async (event: StreamEvent) => {
      seen[name]?.push(jobIdOf(event));
      await delay(5); // slow enough that one consumer cannot take everything
    };
    const a = startConsumer(prefix, { consumer: 'a', batchSize: 2 }, make('a'));
    const b = startConsumer(prefix, { consumer: 'b', batchSize: 2 }, make('b'));
    await publishJobs(prefix, 20);

    const all = () => [...(seen['a'] ?? []), ...(seen['b'] ?? [])];
    await waitFor(() => all().length >= 20, '20 deliveries');
    await a.stop();
    await b.stop();

    expect(all().sort()).toEqual(Array.from({ length: 20 }, (_, i) => `job-${i + 1}`).sort());
    expect(seen['a']?.length).toBeGreaterThan(0);
    expect(seen['b']?.length).toBeGreaterThan(0);
    expect(await pendingCount(prefix, 'g')).toBe(0);
  });

  it('exposes extra fields raw and starts a new group at $ by default', async () => {
    const prefix = uniquePrefix();
    await publish(prefix, succeeded('before-group'));
    await ensureConsumerGroup(admin, prefix, 'g'); // default '$': the event above is not for this group
    const webhook = JSON.stringify({ url: 'https://hooks.example.test/x', events: ['job.succeeded'] });
    const streamId = await publish(prefix, succeeded('job-1'), { webhook });
    const received: StreamEvent[] = [];
    const consumer = startConsumer(prefix, { consumer: 'c', startId: '$' }, async (event) => {
      received.push(event);
    });
    await waitFor(() => received.length === 1, 'one delivery');
    await consumer.stop();
    expect(received[0]).toEqual({ streamId, event: succeeded('job-1'), fields: { webhook } });
  });

  it('resumes after a crash: the un-acked entry comes first, then the rest, nothing lost', async () => {
    const prefix = uniquePrefix();
    await publishJobs(prefix, 10);
    const first: string[] = [];
    // Reads 5 at a time; handles 3, then "crashes" on the 4th (throws and stops, nothing more acked).
    const crashing = startConsumer(prefix, { consumer: 'c', batchSize: 5 }, async (event) => {
      if (first.length === 3) {
        crashing.controller.abort();
        throw new Error('crash');
      }
      first.push(jobIdOf(event));
    });
    await crashing.done;
    expect(first).toEqual(['job-1', 'job-2', 'job-3']);
    expect(await pendingCount(prefix, 'g')).toBe(2); // job-4 (failed) and job-5 (read, never handled)

    const second: string[] = [];
    const resumed = startConsumer(prefix, { consumer: 'c', batchSize: 5 }, async (event) => {
      second.push(jobIdOf(event));
    });
    await waitFor(() => second.length >= 7, 'the remaining 7 events');
    await resumed.stop();
    expect(second).toEqual(['job-4', 'job-5', 'job-6', 'job-7', 'job-8', 'job-9', 'job-10']);
    expect(await pendingCount(prefix, 'g')).toBe(0);
  });

  it('claims entries left pending by a dead consumer once they are idle for claimIdleMs', async () => {
    const prefix = uniquePrefix();
    const key = eventsStreamKey(prefix);
    await ensureConsumerGroup(admin, prefix, 'g', '0');
    const ids = await publishJobs(prefix, 3);
    // Consumer "dead" reads the three entries and never acks them; one is then trimmed away.
    const readAt = Date.now(); // before the read: Redis starts the idle clock when it delivers
    await admin.xreadgroup('GROUP', 'g', 'dead', 'COUNT', 10, 'STREAMS', key, '>');
    await admin.xdel(key, ids[2] as string);

    const received: { job: string; at: number }[] = [];
    const consumer = startConsumer(prefix, { consumer: 'alive', claimIdleMs: 200 }, async (event) => {
      received.push({ job: jobIdOf(event), at: Date.now() });
    });
    await publishJobs(prefix, 1, 4); // a new event flows at once, before the claim
    await waitFor(() => received.length >= 3, 'the claimed entries');
    await consumer.stop();

    expect(received.map((r) => r.job)).toEqual(['job-4', 'job-1', 'job-2']);
    for (const r of received.slice(1)) expect(r.at - readAt).toBeGreaterThanOrEqual(200);
    expect(await pendingCount(prefix, 'g')).toBe(0);
  });

  it('acks own pending entries that were trimmed from the stream, without calling the handler', async () => {
    const prefix = uniquePrefix();
    const key = eventsStreamKey(prefix);
    await ensureConsumerGroup(admin, prefix, 'g', '0');
    const ids = await publishJobs(prefix, 3);
    await admin.xreadgroup('GROUP', 'g', 'c', 'COUNT', 10, 'STREAMS', key, '>');
    await admin.xdel(key, ids[0] as string, ids[1] as string);

    const received: string[] = [];
    const consumer = startConsumer(prefix, { consumer: 'c' }, async (event) => {
      received.push(jobIdOf(event));
    });
    await waitFor(async () => received.length === 1 && (await pendingCount(prefix, 'g')) === 0, 'all acked');
    await consumer.stop();
    expect(received).toEqual(['job-3']);
  });

  it('replayGroupFrom re-delivers the events after an id, to a running consumer', async () => {
    const prefix = uniquePrefix();
    const ids = await publishJobs(prefix, 5);
    const received: string[] = [];
    const consumer = startConsumer(prefix, { consumer: 'c' }, async (event) => {
      received.push(jobIdOf(event));
    });
    await waitFor(() => received.length === 5, 'first delivery');

    await replayGroupFrom(admin, prefix, 'g', ids[2] as string);
    await waitFor(() => received.length === 7, 'the replay after job-3');
    await replayGroupFrom(admin, prefix, 'g', '0');
    await waitFor(() => received.length === 12, 'the replay of everything');
    await consumer.stop();

    expect(received).toEqual(['job-1', 'job-2', 'job-3', 'job-4', 'job-5', 'job-4', 'job-5', 'job-1', 'job-2', 'job-3', 'job-4', 'job-5']);
    expect(await pendingCount(prefix, 'g')).toBe(0);
  });

  it('dead-letters an entry whose event is not JSON or fails the schema, at once, without blocking the rest', async () => {
    const prefix = uniquePrefix();
    const key = eventsStreamKey(prefix);
    await publish(prefix, succeeded('job-1'));
    const notJson = (await admin.xadd(key, '*', 'type', 'job.succeeded', 'id', 'evt_x', 'event', '{not json')) as string;
    const wrongShape = (await admin.xadd(key, '*', 'type', 'job.succeeded', 'id', 'evt_y', 'event', JSON.stringify({ type: 'job.succeeded' }))) as string;
    await publish(prefix, batchCompleted('batch-1'));

    const received: string[] = [];
    const dead: DeadLetter[] = [];
    const consumer = startConsumer(
      prefix,
      { consumer: 'c', onDeadLetter: (entry) => void dead.push(entry) },
      async (event) => {
        received.push(jobIdOf(event));
      },
    );
    await waitFor(() => received.length === 2 && dead.length === 2, 'deliveries and dead letters');
    await consumer.stop();

    expect(received).toEqual(['job-1', 'batch-1']);
    expect(dead.map((d) => [d.streamId, d.deliveries])).toEqual([
      [notJson, 1],
      [wrongShape, 1],
    ]);
    expect(dead[0]?.raw).toEqual({ type: 'job.succeeded', id: 'evt_x', event: '{not json' });
    expect(dead[0]?.error).toBeInstanceOf(SyntaxError);
    expect(await pendingCount(prefix, 'g')).toBe(0);
  });

  it('retries a failing handler, then dead-letters the entry after maxDeliveries while the others flow', async () => {
    const prefix = uniquePrefix();
    const ids = await publishJobs(prefix, 5);
    const attempts = new Map<string, number>();
    const received: string[] = [];
    const dead: DeadLetter[] = [];
    const consumer = startConsumer(
      prefix,
      { consumer: 'c', maxDeliveries: 3, onDeadLetter: (entry) => void dead.push(entry) },
      async (event) => {
        const job = jobIdOf(event);
        attempts.set(job, (attempts.get(job) ?? 0) + 1);
        if (job === 'job-2') throw new Error('webhook endpoint returned 500');
        // Fails once, then succeeds: retried, not dead-lettered.
        if (job === 'job-4' && attempts.get(job) === 1) throw new Error('transient');
        received.push(job);
      },
    );
    await waitFor(() => dead.length === 1 && received.length === 4, 'dead letter and the other events');
    await consumer.stop();

    expect(received).toEqual(['job-1', 'job-3', 'job-5', 'job-4']);
    expect(attempts.get('job-2')).toBe(3);
    expect(attempts.get('job-4')).toBe(2);
    expect(dead).toHaveLength(1);
    expect(dead[0]).toMatchObject({ streamId: ids[1], deliveries: 3 });
    expect((dead[0]?.error as Error | undefined)?.message).toBe('webhook endpoint returned 500');
    expect(await pendingCount(prefix, 'g')).toBe(0);
  });

  it('dead-letters without calling the handler an entry already delivered more than maxDeliveries times', async () => {
    const prefix = uniquePrefix();
    const key = eventsStreamKey(prefix);
    await ensureConsumerGroup(admin, prefix, 'g', '0');
    const [poison] = await publishJobs(prefix, 1);
    // Three deliveries that each "crashed the process" before any ack.
    await admin.xreadgroup('GROUP', 'g', 'c', 'STREAMS', key, '>');
    await admin.xreadgroup('GROUP', 'g', 'c', 'STREAMS', key, '0');
    await admin.xreadgroup('GROUP', 'g', 'c', 'STREAMS', key, '0');

    const dead: DeadLetter[] = [];
    let calls = 0;
    const consumer = startConsumer(prefix, { consumer: 'c', maxDeliveries: 3, onDeadLetter: (entry) => void dead.push(entry) }, async () => {
      calls++;
    });
    await waitFor(() => dead.length === 1, 'the dead letter');
    await consumer.stop();
    expect(calls).toBe(0);
    expect(dead[0]).toMatchObject({ streamId: poison, deliveries: 4 });
    expect(await pendingCount(prefix, 'g')).toBe(0);
  });

  it('stops when the signal aborts, also while blocked in a read', async () => {
    const prefix = uniquePrefix();
    const consumer = startConsumer(prefix, { consumer: 'c', blockMs: 200 }, async () => {});
    await delay(50);
    const started = Date.now();
    await consumer.stop();
    expect(Date.now() - started).toBeLessThan(1_000);
  });
});

describe('readEvents / streamIdAt', () => {
  it('converts times to the smallest stream id at that ms', () => {
    expect(streamIdAt('2024-11-24T00:00:00.000Z')).toBe('1732406400000-0');
    expect(streamIdAt(new Date(1732406400123))).toBe('1732406400123-0');
    expect(() => streamIdAt('yesterday')).toThrow(RangeError);
  });

  it('reads an inclusive range of ids, skipping invalid entries, limited by count', async () => {
    const prefix = uniquePrefix();
    const key = eventsStreamKey(prefix);
    const t0 = Date.parse('2024-11-24T10:00:00.000Z');
    const webhook = JSON.stringify({ url: 'https://hooks.example.test/y' });
    await publish(prefix, succeeded('at-0s'), {}, `${t0}-0`);
    await publish(prefix, succeeded('at-1s'), { webhook }, `${t0 + 1000}-0`);
    await publish(prefix, succeeded('at-1s-b'), {}, `${t0 + 1000}-1`);
    await admin.xadd(key, `${t0 + 1500}-0`, 'type', 'job.succeeded', 'id', 'evt_bad', 'event', 'garbage');
    await publish(prefix, batchCompleted('at-2s'), {}, `${t0 + 2000}-0`);
    await publish(prefix, succeeded('at-3s'), {}, `${t0 + 3000}-0`);

    const range = await readEvents(admin, prefix, streamIdAt(new Date(t0 + 500)), streamIdAt(new Date(t0 + 2000)));
    expect(range.map(jobIdOf)).toEqual(['at-1s', 'at-1s-b', 'at-2s']);
    expect(range[0]).toMatchObject({ streamId: `${t0 + 1000}-0`, fields: { webhook } });
    expect(range[1]?.fields).toEqual({});

    expect((await readEvents(admin, prefix)).map(jobIdOf)).toEqual(['at-0s', 'at-1s', 'at-1s-b', 'at-2s', 'at-3s']);
    // count limits the entries read (the invalid one included), not the events returned.
    expect((await readEvents(admin, prefix, '-', '+', 2)).map(jobIdOf)).toEqual(['at-0s', 'at-1s']);
    expect(await readEvents(admin, uniquePrefix())).toEqual([]);
  });
});
