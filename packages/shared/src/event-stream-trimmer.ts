/**
 * Runs `trimEventStream` every few seconds in a worker process and logs what matters: each
 * consumer group whose lag passes a share of maxLen (info, at most once a minute per group: it
 * is heading for the hard cap), and unread entries the hard cap cut (warn, naming the group and
 * how many, every time). Every worker runs one; the trim is atomic, so several at once only
 * repeat the lag lines, and each loss is reported by the process whose trim caused it.
 *
 * Errors are logged, never thrown: the stream stays bounded by XADD's backstop meanwhile.
 */
import type { Redis } from 'ioredis';
import { eventStreamHardCap, trimEventStream, type EventStreamTrimReport } from './event-stream-trim.js';
import type { Logger } from './logger.js';
import { createRedisConnection } from './redis-connection.js';

/** How often the stream is trimmed: the stream can grow by this long's events past its bound. */
export const EVENT_STREAM_TRIM_INTERVAL_MS = 10_000;
/** A group whose lag passes this share of maxLen is logged: it is keeping entries past maxLen. */
const LAG_LOG_SHARE = 0.5;
/** How often one lagging group is logged. */
const LAG_LOG_EVERY_MS = 60_000;

export interface EventStreamTrimmerOptions {
  redisUrl: string;
  prefix: string;
  /** The stream's normal length (`ZIMAGE_EVENTS_MAXLEN`): the same as the publishers'. */
  maxLen: number;
  logger: Logger;
  /** Default EVENT_STREAM_TRIM_INTERVAL_MS. */
  intervalMs?: number;
}

export interface EventStreamTrimmer {
  /** Stops the timer, waits for a trim in progress, closes the connection. */
  close(): Promise<void>;
}

export function startEventStreamTrimmer(options: EventStreamTrimmerOptions): EventStreamTrimmer {
  const intervalMs = options.intervalMs ?? EVENT_STREAM_TRIM_INTERVAL_MS;
  const logger = options.logger.child({ component: 'event-stream-trimmer' });
  // Producer role: during a Redis outage a trim fails fast (and is retried next time) instead of
  // hanging, which would hold up close().
  const redis: Redis = createRedisConnection(options.redisUrl, 'producer');
  const lagLoggedAt = new Map<string, number>();
  let failing = false;
  let closed = false;
  let timer: NodeJS.Timeout | undefined;
  let running: Promise<void> | undefined;

  const report = (result: EventStreamTrimReport): void => {
    const now = Date.now();
    for (const group of result.groups) {
      if (group.unreadLost > 0) {
        logger.warn(
          { group: group.name, unreadLost: group.unreadLost, hardCap: eventStreamHardCap(options.maxLen), length: result.length },
          `Event stream hard cap: consumer group "${group.name}" lost ${group.unreadLost} events it had not read (they were trimmed)`,
        );
      }
      if (group.lag !== null && group.lag > options.maxLen * LAG_LOG_SHARE) {
        if (now - (lagLoggedAt.get(group.name) ?? 0) < LAG_LOG_EVERY_MS) continue;
        lagLoggedAt.set(group.name, now);
        logger.info(
          { group: group.name, lag: group.lag, pending: group.pending, maxLen: options.maxLen, length: result.length },
          `Event stream: consumer group "${group.name}" is ${group.lag} events behind`,
        );
      }
    }
  };

  const run = async (): Promise<void> => {
    try {
      if (redis.status === 'wait') await redis.connect();
      report(await trimEventStream(redis, { prefix: options.prefix, maxLen: options.maxLen }));
      if (failing) logger.info('Event stream trimming works again');
      failing = false;
    } catch (error) {
      // Once per outage, not every interval.
      if (!failing) logger.warn({ err: error }, `Event stream trim failed (retried every ${intervalMs} ms): ${(error as Error).message}`);
      failing = true;
    }
  };

  // The first trim at once: a worker starting after an outage may find the stream long.
  const schedule = (delayMs: number): void => {
    if (closed) return;
    timer = setTimeout(() => {
      running = run().finally(() => {
        running = undefined;
        schedule(intervalMs);
      });
    }, delayMs);
    timer.unref();
  };
  schedule(0);

  return {
    async close() {
      closed = true;
      clearTimeout(timer);
      await running;
      await redis.quit().catch(() => redis.disconnect());
    },
  };
}
