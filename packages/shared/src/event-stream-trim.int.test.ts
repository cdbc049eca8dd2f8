import { randomUUID } from 'node:crypto';
import { Redis } from 'ioredis';
import { afterAll, describe, expect, inject, it } from 'vitest';
import { ensureConsumerGroup } from './event-consumer.js';
import { readEventGroups } from './event-group-status.js';
import { EVENT_STREAM_BACKSTOP_FACTOR, publishJobEvent } from './event-publisher.js';
import { eventStreamHardCap, trimEventStream } from './event-stream-trim.js';
import { eventIdFor, type JobExpiredEvent } from './events.js';
import { eventsStreamKey } from './queue-names.js';

// Provided by test/support/global-setup.ts (outside this package's tsconfig, hence repeated here).
declare module 'vitest' {
  export interface ProvidedContext {
    redisUrl: string;
  }
}

const redis = new Redis(inject('redisUrl'));
afterAll(async () => {
  await redis.quit();
});

const MAX_LEN = 20;
const HARD_CAP = eventStreamHardCap(MAX_LEN);
const uniquePrefix = (): string => `trim-${randomUUID().slice(0, 8)}`;

/** Publishes `count` job.expired events the way the worker does (the publisher's Lua, its XADD cap). */
async function publish(prefix: string, count: number, maxLen = MAX_LEN): Promise<void> {
  for (let i = 0; i < count; i++) {
    const jobId = `job-${randomUUID()}`;
    const event: JobExpiredEvent = {
      id: eventIdFor('job.expired', jobId),
      version: 1,
      type: 'job.expired',
      timestamp: new Date().toISOString(),
      data: { jobId, metadata: {}, deadline: new Date().toISOString() },
    };
    await publishJobEvent(redis, { event, outcome: 'expired', manifest: { jobId, status: 'expired' }, incarnation: 1 }, { prefix, maxLen, markerTtlSeconds: 60 });
  }
}

/** Reads `count` entries for `group` (XREADGROUP '>'), acking them unless told not to. */
async function read(prefix: string, group: string, count: number, ack = true): Promise<string[]> {
  const key = eventsStreamKey(prefix);
  const reply = (await redis.xreadgroup('GROUP', group, 'c1', 'COUNT', count, 'STREAMS', key, '>')) as [string, [string, string[]][]][] | null;
  const ids = (reply?.[0]?.[1] ?? []).map(([id]) => id);
  if (ack && ids.length > 0) await redis.xack(key, group, ...ids);
  return ids;
}

const xlen = (prefix: string): Promise<number> => redis.xlen(eventsStreamKey(prefix));

describe('trimEventStream', () => {
  it('keeps every entry a group has not read, then trims back to maxLen once it has', async () => {
    const prefix = uniquePrefix();
    await ensureConsumerGroup(redis, prefix, 'slow');
    await publish(prefix, 60);

    const before = await trimEventStream(redis, { prefix, maxLen: MAX_LEN });
    expect(await xlen(prefix)).toBeGreaterThanOrEqual(60);
    expect(before).toMatchObject({ length: 60, trimmed: 0, hardCapHit: false, groups: [{ name: 'slow', lag: 60, pending: 0, lastDeliveredId: '0-0', unreadLost: 0 }] });

    await read(prefix, 'slow', 60);
    const after = await trimEventStream(redis, { prefix, maxLen: MAX_LEN });
    expect(after).toMatchObject({ length: MAX_LEN, trimmed: 40, hardCapHit: false, groups: [{ name: 'slow', lag: 0, pending: 0 }] });
    expect(await xlen(prefix)).toBe(MAX_LEN);
  });

  it('keeps entries read but not acknowledged (pending) until they are', async () => {
    const prefix = uniquePrefix();
    await ensureConsumerGroup(redis, prefix, 'g');
    await publish(prefix, 60);
    const ids = await read(prefix, 'g', 60, false);

    expect(await trimEventStream(redis, { prefix, maxLen: MAX_LEN })).toMatchObject({ length: 60, trimmed: 0, groups: [{ name: 'g', lag: 0, pending: 60 }] });

    // Acking out of order: the oldest pending entry is what holds the stream.
    await redis.xack(eventsStreamKey(prefix), 'g', ...ids.slice(0, 25), ...ids.slice(40));
    expect(await trimEventStream(redis, { prefix, maxLen: MAX_LEN })).toMatchObject({ length: 35, trimmed: 25, groups: [{ pending: 15 }] });
    const [first] = await redis.xrange(eventsStreamKey(prefix), '-', '+', 'COUNT', 1);
    expect(first?.[0]).toBe(ids[25]);
  });

  it('does not let a pending entry that is no longer in the stream hold it', async () => {
    const prefix = uniquePrefix();
    await ensureConsumerGroup(redis, prefix, 'g');
    await publish(prefix, 60);
    await read(prefix, 'g', 10, false);
    // Gone from the stream but still in the PEL (as after a trim by XADD's backstop).
    await redis.xtrim(eventsStreamKey(prefix), 'MAXLEN', 50);
    await read(prefix, 'g', 50);

    expect(await trimEventStream(redis, { prefix, maxLen: MAX_LEN })).toMatchObject({ length: MAX_LEN, trimmed: 30, groups: [{ pending: 10 }] });
  });

  it('trims to maxLen when the stream has no consumer groups', async () => {
    const prefix = uniquePrefix();
    await publish(prefix, 60);

    expect(await trimEventStream(redis, { prefix, maxLen: MAX_LEN })).toEqual({ length: MAX_LEN, trimmed: 40, hardCapHit: false, groups: [] });
    expect(await trimEventStream(redis, { prefix: uniquePrefix(), maxLen: MAX_LEN })).toEqual({ length: 0, trimmed: 0, hardCapHit: false, groups: [] });
  });

  it('holds the slowest group only: the others do not keep entries past it', async () => {
    const prefix = uniquePrefix();
    for (const group of ['fast', 'slow']) await ensureConsumerGroup(redis, prefix, group);
    await publish(prefix, 60);
    await read(prefix, 'fast', 60);
    await read(prefix, 'slow', 15);

    expect(await trimEventStream(redis, { prefix, maxLen: MAX_LEN })).toMatchObject({ length: 45, trimmed: 15 });
  });

  it('past the hard cap, trims unread entries too and reports how many each group lost', async () => {
    const prefix = uniquePrefix();
    for (const group of ['idle', 'started', 'current']) await ensureConsumerGroup(redis, prefix, group);
    const published = HARD_CAP + 10;
    await publish(prefix, published);
    await read(prefix, 'started', 4);
    await read(prefix, 'current', published);

    const report = await trimEventStream(redis, { prefix, maxLen: MAX_LEN });
    expect(report).toMatchObject({ length: HARD_CAP, trimmed: 10, hardCapHit: true });
    const lost = Object.fromEntries(report.groups.map((group) => [group.name, group.unreadLost]));
    expect(lost).toEqual({ idle: 10, started: 6, current: 0 });
    // The lag is XINFO's, whatever Redis version computes it.
    const xinfo = (await redis.xinfo('GROUPS', eventsStreamKey(prefix))) as unknown[][];
    const lagOf = (name: string): unknown => {
      const fields = xinfo.find((group) => group[group.indexOf('name') + 1] === name) ?? [];
      return fields[fields.indexOf('lag') + 1];
    };
    expect(report.groups.map((group) => [group.name, group.lag])).toEqual(report.groups.map((group) => [group.name, lagOf(group.name)]));
    expect(await readEventGroups(redis, prefix)).toEqual(report.groups.map(({ unreadLost: _, ...group }) => group));

    // Nothing more is lost while the stream stays at the cap.
    expect(await trimEventStream(redis, { prefix, maxLen: MAX_LEN })).toMatchObject({ length: HARD_CAP, trimmed: 0, hardCapHit: false });
  });

  it('removes more than one script step in one call', async () => {
    const prefix = uniquePrefix();
    const maxLen = 200;
    await publish(prefix, 1_300, maxLen);

    expect(await trimEventStream(redis, { prefix, maxLen })).toMatchObject({ length: maxLen, trimmed: 1_100 });
  });

  it("leaves XADD's own cap far above maxLen, as a backstop when no trimmer runs", async () => {
    const prefix = uniquePrefix();
    const backstop = MAX_LEN * EVENT_STREAM_BACKSTOP_FACTOR;
    await publish(prefix, backstop + 80);

    const length = await xlen(prefix);
    // Approximate (MAXLEN ~): whole radix-tree nodes go, so a little more than the cap stays.
    expect(length).toBeGreaterThanOrEqual(backstop);
    expect(length).toBeLessThan(backstop + 80);
  });

  it('refuses a maxLen that is not a positive integer', async () => {
    await expect(trimEventStream(redis, { prefix: uniquePrefix(), maxLen: 0 })).rejects.toMatchObject({ code: 'CONFIG_INVALID' });
  });
});
