import { randomUUID } from 'node:crypto';
import { setTimeout as delay } from 'node:timers/promises';
import { Redis } from 'ioredis';
import { afterAll, describe, expect, inject, it } from 'vitest';
import { ensureConsumerGroup } from './event-consumer.js';
import { eventStreamHardCap } from './event-stream-trim.js';
import { startEventStreamTrimmer } from './event-stream-trimmer.js';
import { createLogger } from './logger.js';
import { eventsStreamKey } from './queue-names.js';
import { freePort } from './redis-server.js';

// Provided by test/support/global-setup.ts (outside this package's tsconfig, hence repeated here).
declare module 'vitest' {
  export interface ProvidedContext {
    redisUrl: string;
  }
}

const redisUrl = inject('redisUrl');
const redis = new Redis(redisUrl);
afterAll(async () => {
  await redis.quit();
});

const MAX_LEN = 20;

/** A logger keeping every record in memory. */
function memoryLogger() {
  const records: Record<string, unknown>[] = [];
  const logger = createLogger({ level: 'debug', destination: { write: (line: string) => void records.push(JSON.parse(line) as Record<string, unknown>) } });
  return { logger, records };
}

async function waitFor(condition: () => boolean | Promise<boolean>, what: string, timeoutMs = 5_000): Promise<void> {
  const until = Date.now() + timeoutMs;
  while (!(await condition())) {
    if (Date.now() > until) throw new Error(`timed out waiting for ${what}`);
    await delay(10);
  }
}

/** Plain entries (the trimmer does not look inside them). */
async function add(prefix: string, count: number): Promise<void> {
  const pipeline = redis.pipeline();
  for (let i = 0; i < count; i++) pipeline.xadd(eventsStreamKey(prefix), '*', 'type', 'job.expired', 'id', `evt_${i}`, 'event', '{}');
  await pipeline.exec();
}

describe('startEventStreamTrimmer', () => {
  it('trims on its own, logs a lagging group at info and what the hard cap cost it at warn', async () => {
    const prefix = `trimmer-${randomUUID().slice(0, 8)}`;
    await ensureConsumerGroup(redis, prefix, 'billing');
    await add(prefix, eventStreamHardCap(MAX_LEN) + 7);
    const { logger, records } = memoryLogger();
    const trimmer = startEventStreamTrimmer({ redisUrl, prefix, maxLen: MAX_LEN, logger, intervalMs: 20 });
    try {
      await waitFor(() => records.some((r) => r['level'] === 40), 'the hard-cap warning');
      expect(records.find((r) => r['level'] === 40)).toMatchObject({ group: 'billing', unreadLost: 7, msg: expect.stringContaining('"billing" lost 7 events') });
      await waitFor(() => records.some((r) => r['level'] === 30 && r['group'] === 'billing'), 'the lag line');
      expect(records.find((r) => r['level'] === 30)).toMatchObject({ group: 'billing', lag: eventStreamHardCap(MAX_LEN) });
      // Several more trims while it still lags.
      await delay(150);

      // The group catches up: the next trims bring the stream back to maxLen.
      await redis.xgroup('SETID', eventsStreamKey(prefix), 'billing', '$');
      await waitFor(async () => (await redis.xlen(eventsStreamKey(prefix))) === MAX_LEN, 'the stream back at maxLen');
    } finally {
      await trimmer.close();
    }
    // Lag lines are not repeated every trim, and a loss is reported once.
    expect(records.filter((r) => r['level'] === 30 && r['group'] === 'billing')).toHaveLength(1);
    expect(records.filter((r) => r['level'] === 40)).toHaveLength(1);

    // Closed: nothing trims any more.
    await add(prefix, 30);
    await delay(100);
    expect(await redis.xlen(eventsStreamKey(prefix))).toBe(MAX_LEN + 30);
  });

  it('logs a failing trim once, never throws, and closes while Redis is unreachable', async () => {
    const { logger, records } = memoryLogger();
    const trimmer = startEventStreamTrimmer({ redisUrl: `redis://127.0.0.1:${await freePort()}`, prefix: 'unreachable', maxLen: MAX_LEN, logger, intervalMs: 20 });
    await waitFor(() => records.length > 0, 'the failure line');
    await delay(200);
    await trimmer.close();
    expect(records).toEqual([expect.objectContaining({ level: 40, msg: expect.stringContaining('Event stream trim failed') })]);
  });
});
