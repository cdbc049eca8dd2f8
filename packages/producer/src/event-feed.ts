/**
 * `producer.events(...)`: the event stream as an async iterator.
 *
 * Two modes, one shape:
 * - **tail** (no `group`): reads the stream from a position, like `tail -f`; nothing is recorded
 *   in Redis, so two iterators each see every event, and a restarted process starts over from
 *   where it asks (`from`).
 * - **group** (`group` set): a consumer group, as the webhook dispatcher uses: the group remembers
 *   how far it got, several processes share its events, and an event is acknowledged only when
 *   the loop asks for the next one. The event a loop was on when it stopped (`break`, a throw, an
 *   abort, a crash) is delivered again: at least once, so deduplicate on `event.id`.
 *
 * With `batchId` the iterator ends after that batch's `batch.completed`; with `jobId`, after the
 * job's terminal event. Should the stream have lost that event (trimmed, or published before the
 * position read from), the read model is consulted whenever the iterator has caught up, and it
 * ends as well.
 */
import { hostname } from 'node:os';
import {
  asRedisUnavailable,
  AppError,
  batchKey,
  consumeEvents,
  isRedisConnectionError,
  createRedisConnection,
  lastEventId,
  readEventsAfter,
  streamIdAt,
  waitForRedis,
  type StreamEvent,
  type ZimageEvent,
} from '@zimage/shared';
import type { Redis } from 'ioredis';
import type { ProducerContext } from './producer-context.js';
import { readBatch, readJob, TERMINAL_JOB_STATES } from './read-models.js';
import { RedisOutage } from './redis-outage.js';

export interface EventFeedOptions {
  /** Only events of this batch (its jobs' events and its `batch.completed`); ends after `batch.completed`. */
  batchId?: string;
  /** Only events of this job; ends after its `job.succeeded`, `job.failed` or `job.expired`. */
  jobId?: string;
  /** Only these event types. */
  types?: readonly ZimageEvent['type'][];
  /**
   * Where to start: `'now'`, a stream id (`'1732400000000-0'`, `'0'` for all that is kept) or a
   * time. @defaultValue with `batchId`, the batch's creation; with `jobId`, the job's creation
   * (less 10 minutes for clocks that differ); otherwise `'now'`. In group mode it applies only
   * when the group is created.
   */
  from?: 'now' | string | Date;
  /**
   * Consumer group: shared progress and at-least-once delivery (see above). Events the filters
   * leave out are acknowledged for the group too: give a filtered feed a group of its own.
   */
  group?: string;
  /** This process's name in the group. @defaultValue `hostname-pid` */
  consumer?: string;
  /** Ends the iteration: the loop rejects with the signal's reason. */
  signal?: AbortSignal;
}

export interface FeedEvent {
  /** The stream entry's id: a `from` to resume after it (exclusive of earlier ones). */
  streamId: string;
  event: ZimageEvent;
}

/** Clocks of the producer and of Redis may differ; a start derived from a creation time goes back this far. */
const CLOCK_MARGIN_MS = 10 * 60_000;
const BLOCK_MS = 1_000;
const STREAM_ID = /^\d+(-\d+)?$/;

export async function* eventFeed(context: ProducerContext, options: EventFeedOptions = {}): AsyncGenerator<FeedEvent, void, undefined> {
  const { signal } = options;
  signal?.throwIfAborted();
  const filter = feedFilter(options);
  const redis = await openReader(context);
  const onAbort = () => redis.disconnect();
  signal?.addEventListener('abort', onAbort, { once: true });
  try {
    signal?.throwIfAborted(); // aborted while the reader connected
    const from = await startPosition(context, redis, options);
    yield* options.group ? groupEvents(context, redis, options, filter, from) : tailEvents(context, redis, options, filter, from);
  } catch (error) {
    // An abort disconnects the reader mid-read: report the abort, not the broken connection.
    if (signal?.aborted) throw signal.reason;
    throw asRedisUnavailable(error, 'reading events');
  } finally {
    signal?.removeEventListener('abort', onAbort);
    redis.disconnect();
  }
}

interface FeedFilter {
  wants(event: ZimageEvent): boolean;
  ends(event: ZimageEvent): boolean;
}

function feedFilter(options: EventFeedOptions): FeedFilter {
  const types = options.types ? new Set(options.types) : undefined;
  const { batchId, jobId } = options;
  const field = (event: ZimageEvent, name: 'batchId' | 'jobId'): unknown => (event.data as Record<string, unknown>)[name];
  return {
    wants: (event) =>
      (!types || types.has(event.type)) && (batchId === undefined || field(event, 'batchId') === batchId) && (jobId === undefined || field(event, 'jobId') === jobId),
    ends: (event) =>
      (batchId !== undefined && event.type === 'batch.completed' && event.data.batchId === batchId) ||
      (jobId !== undefined && event.type.startsWith('job.') && field(event, 'jobId') === jobId),
  };
}

/** A connection of the feed's own: its blocking reads would stall every other command. */
async function openReader(context: ProducerContext): Promise<Redis> {
  const redis = createRedisConnection(context.redisUrl, 'producer');
  try {
    await waitForRedis(redis, context.redisUrl);
  } catch (error) {
    redis.disconnect();
    throw error;
  }
  return redis;
}

async function startPosition(context: ProducerContext, redis: Redis, options: EventFeedOptions): Promise<string> {
  const { from } = options;
  if (from instanceof Date) return streamIdAt(from);
  if (from === 'now') return lastEventId(redis, context.prefix);
  if (from !== undefined) {
    if (!STREAM_ID.test(from)) throw new AppError('REQUEST_INVALID', `from: expected 'now', a stream id such as 1732400000000-0, or a Date; got ${JSON.stringify(from)}`);
    return from;
  }
  if (options.batchId !== undefined) {
    // Recorded when the batch was created: a position in the stream's own clock.
    const [streamFrom, createdAt] = await context.connection.hmget(batchKey(context.prefix, options.batchId), 'streamFrom', 'createdAt');
    if (streamFrom) return streamFrom;
    if (!createdAt) throw new AppError('JOB_NOT_FOUND', `no batch ${options.batchId}`);
    return streamIdAt(new Date(Math.max(0, Date.parse(createdAt) - CLOCK_MARGIN_MS)));
  }
  if (options.jobId !== undefined) {
    const job = await readJob(context, options.jobId);
    if (!job) throw new AppError('JOB_NOT_FOUND', `no job ${options.jobId}`);
    return streamIdAt(new Date(Math.max(0, Date.parse(job.createdAt) - CLOCK_MARGIN_MS)));
  }
  return lastEventId(redis, context.prefix);
}

async function* tailEvents(context: ProducerContext, redis: Redis, options: EventFeedOptions, filter: FeedFilter, from: string): AsyncGenerator<FeedEvent> {
  let position = from;
  const outage = new RedisOutage('following the event stream');
  for (;;) {
    options.signal?.throwIfAborted();
    let read: Awaited<ReturnType<typeof readEventsAfter>>;
    try {
      read = await readEventsAfter(redis, context.prefix, position, { count: 100, blockMs: BLOCK_MS });
      outage.clear();
    } catch (error) {
      // A Redis restart is ridden out from the same position: nothing is skipped or repeated.
      await outage.tolerate(error, Number.POSITIVE_INFINITY, options.signal);
      continue;
    }
    position = read.lastId;
    for (const { streamId, event } of read.events) {
      if (!filter.wants(event)) continue;
      yield { streamId, event };
      if (filter.ends(event)) return;
    }
    if (read.events.length === 0 && (await subjectFinished(context, options).catch((error: unknown) => (isRedisConnectionError(error) ? false : Promise.reject(error))))) return;
  }
}

/** Whether the batch or job the feed follows is finished in the read model (its ending event may be gone). */
async function subjectFinished(context: ProducerContext, options: EventFeedOptions): Promise<boolean> {
  if (options.batchId !== undefined) return Boolean((await readBatch(context, options.batchId))?.completedAt);
  if (options.jobId !== undefined) {
    const job = await readJob(context, options.jobId);
    return !job || TERMINAL_JOB_STATES.has(job.state);
  }
  return false;
}

/**
 * Bridges `consumeEvents` (which calls a handler and acks when it resolves) to a pull iterator:
 * the handler hands its event over and waits until the loop asks for the next one (ack) or stops
 * (no ack: the group delivers it again).
 */
async function* groupEvents(context: ProducerContext, redis: Redis, options: EventFeedOptions, filter: FeedFilter, from: string): AsyncGenerator<FeedEvent> {
  const group = options.group as string;
  const stop = new AbortController();
  const handoffs = new Handoffs();
  const consuming = consumeEvents(
    { redis, prefix: context.prefix, group, consumer: options.consumer ?? `${hostname()}-${process.pid}`, startId: from, blockMs: BLOCK_MS, signal: stop.signal },
    // An event the filter leaves out is acknowledged at once.
    async (entry) => (filter.wants(entry.event) ? handoffs.offer(entry) : undefined),
  ).then(
    () => handoffs.end(),
    (error: unknown) => handoffs.end(error),
  );
  try {
    for (;;) {
      const entry = await handoffs.take();
      if (!entry) return;
      yield { streamId: entry.streamId, event: entry.event };
      handoffs.acknowledge();
      if (filter.ends(entry.event)) return;
    }
  } finally {
    stop.abort();
    handoffs.refuse();
    await consuming;
  }
}

/** One event at a time from the group's handler to the iterator, and the answer back. */
class Handoffs {
  #offered: { entry: StreamEvent; answer: (ack: boolean) => void } | undefined;
  #taker: (() => void) | undefined;
  #ended: { error: unknown } | undefined;
  #current: ((ack: boolean) => void) | undefined;

  /** The handler's side: resolves (ack) when the loop moves on, rejects (stays pending) when it stops. */
  offer(entry: StreamEvent): Promise<void> {
    return new Promise((resolve, reject) => {
      this.#offered = { entry, answer: (ack) => (ack ? resolve() : reject(new Error('the event loop stopped before this event was handled'))) };
      this.#taker?.();
    });
  }

  async take(): Promise<StreamEvent | undefined> {
    while (!this.#offered && !this.#ended) await new Promise<void>((resolve) => (this.#taker = resolve));
    this.#taker = undefined;
    const offered = this.#offered;
    if (!offered) {
      if (this.#ended?.error !== undefined) throw this.#ended.error;
      return undefined;
    }
    this.#offered = undefined;
    this.#current = offered.answer;
    return offered.entry;
  }

  acknowledge(): void {
    this.#current?.(true);
    this.#current = undefined;
  }

  refuse(): void {
    this.#current?.(false);
    this.#current = undefined;
    this.#offered?.answer(false);
    this.#offered = undefined;
  }

  end(error?: unknown): void {
    this.#ended = { error };
    this.#taker?.();
  }
}
