import { randomUUID } from 'node:crypto';
import { BudgetStore, eventsStreamKey, FAIR_HOLD_DELAY_MS, GENERATE_JOB_NAME, GENERATE_QUEUE, holdInLanes } from '@zimage/shared';
import { Queue } from 'bullmq';
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

describe('createMetrics: budgets and tenants', () => {
  it("exposes each budget's limit, spend, maybe-billed, reserved and parked jobs, and each tenant's waiting jobs", async () => {
    const prefix = `metrics-${randomUUID().slice(0, 8)}`;
    const store = new BudgetStore(redis, prefix);
    const budget = { id: 'acme-daily', scope: 'tenant', subject: 'acme', limitUsd: 5, kind: 'hard', period: 'day' } as const;
    await store.set(budget);
    const now = Date.now();
    const reserved = await store.reserve([budget], 'job-1', 0.015, now);
    if (reserved.kind !== 'reserved') throw new Error('expected a reservation');
    await store.settle(reserved.reservation, 'billed');
    await store.reserve([budget], 'job-2', 0.03, now);
    await store.park('acme-daily', 'job-3');
    await holdInLanes(redis, prefix, [
      { jobId: 'a1', tenant: 'acme', bullPriority: 101 },
      { jobId: 'a2', tenant: 'acme', bullPriority: 101 },
      { jobId: 'n1', tenant: undefined, bullPriority: 101 },
    ]);
    // The held jobs in BullMQ, and one job that waits for a time (a backoff).
    const queue = new Queue(GENERATE_QUEUE, { connection: redis, prefix });
    for (const jobId of ['a1', 'a2', 'n1']) await queue.add(GENERATE_JOB_NAME, {}, { jobId, delay: FAIR_HOLD_DELAY_MS });
    await queue.add(GENERATE_JOB_NAME, {}, { jobId: 'b1', delay: 60_000 });
    await queue.close();

    const text = await scrape(prefix);
    const labels = 'budget="acme-daily",scope="tenant",kind="hard"';
    expect(text).toContain(`zimage_budget_limit_usd{${labels}} 5`);
    expect(text).toContain(`zimage_budget_spent_usd{${labels}} 0.015`);
    expect(text).toContain(`zimage_budget_reserved_usd{${labels}} 0.03`);
    expect(text).toContain(`zimage_budget_maybe_billed_usd{${labels}} 0`);
    expect(text).toContain(`zimage_budget_parked_jobs{${labels}} 1`);
    expect(text).toMatch(/^zimage_tenant_waiting_jobs\{tenant="acme"\} 2$/m);
    expect(text).toMatch(/^zimage_tenant_waiting_jobs\{tenant=""\} 1$/m);
    // Held jobs wait for their turn: counted as waiting, not delayed.
    expect(text).toMatch(/^zimage_jobs\{state="waiting"\} 3$/m);
    expect(text).toMatch(/^zimage_jobs\{state="delayed"\} 1$/m);
  });
});
