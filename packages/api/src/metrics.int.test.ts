import { randomUUID } from 'node:crypto';
import { eventsStreamKey } from '@zimage/shared';
import { Redis } from 'ioredis';
import { afterAll, describe, expect, inject, it } from 'vitest';
import { createMetrics } from './metrics.js';

// Provided by test/support/global-setup.ts (outside this package's tsconfig, hence repeated here).
declare module 'vitest' {
  export interface ProvidedContext {
    redisUrl: string;
  }
}

const redis = new Redis(inject('redisUrl'), { maxRetriesPerRequest: null });
afterAll(async () => {
  await redis.quit();
});

async function scrape(prefix: string): Promise<string> {
  const metrics = createMetrics(redis, prefix);
  try {
    return await metrics.registry.metrics();
  } finally {
    await metrics.close();
  }
}

describe('createMetrics: the event stream', () => {
  it("exposes the stream's length and each consumer group's lag and pending entries, as XINFO reports them", async () => {
    const prefix = `metrics-${randomUUID().slice(0, 8)}`;
    const key = eventsStreamKey(prefix);
    for (const group of ['billing', 'webhooks']) await redis.xgroup('CREATE', key, group, '$', 'MKSTREAM');
    for (let i = 0; i < 10; i++) await redis.xadd(key, '*', 'type', 'job.expired', 'id', `evt_${i}`, 'event', '{}');
    const reply = (await redis.xreadgroup('GROUP', 'webhooks', 'c1', 'COUNT', 3, 'STREAMS', key, '>')) as [string, [string, string[]][]][];
    await redis.xack(key, 'webhooks', reply[0]?.[1][0]?.[0] as string);

    const text = await scrape(prefix);
    expect(text).toMatch(/^zimage_events_stream_length 10$/m);
    expect(text).toMatch(/^zimage_events_group_lag\{group="billing"\} 10$/m);
    expect(text).toMatch(/^zimage_events_group_lag\{group="webhooks"\} 7$/m);
    expect(text).toMatch(/^zimage_events_group_pending\{group="billing"\} 0$/m);
    expect(text).toMatch(/^zimage_events_group_pending\{group="webhooks"\} 2$/m);
  });

  it('reports an empty stream when it does not exist yet', async () => {
    const text = await scrape(`metrics-${randomUUID().slice(0, 8)}`);
    expect(text).toMatch(/^zimage_events_stream_length 0$/m);
    expect(text).not.toMatch(/^zimage_events_group_lag\{/m);
  });
});
