/**
 * `GET /metrics` (prom-client). Everything is read at scrape time from Redis, where the whole
 * fleet writes it: queue counts (BullMQ), terminal jobs / images stored / spend (the event script),
 * upstream calls and latency (every worker), each account's pace (the governors' snapshots), and
 * the event stream's length and each consumer group's lag (XINFO GROUPS).
 * So any API replica answers for the whole deployment.
 */
import {
  BudgetStore,
  countHeldJobs,
  eventsStreamKey,
  readFairShare,
  GENERATE_QUEUE,
  metricsTotalsKey,
  parkedJobsKey,
  pauseReasonKey,
  readEventGroups,
  readGovernorSnapshots,
  readUpstreamMetrics,
  WEBHOOK_QUEUE,
  type Budget,
  type BudgetUsage,
  type EventGroupStatus,
  type LaneStatus,
} from '@zimage/shared';
import { Queue } from 'bullmq';
import type { Redis } from 'ioredis';
import { Counter, Gauge, Registry, type Metric } from 'prom-client';
import { oncePerScrape } from './once-per-scrape.js';

const JOB_STATES = ['waiting', 'prioritized', 'active', 'delayed', 'completed', 'failed'] as const;

export interface Metrics {
  registry: Registry;
  close(): Promise<void>;
}

export function createMetrics(redis: Redis, prefix: string): Metrics {
  const registry = new Registry();
  const generate = new Queue(GENERATE_QUEUE, { connection: redis, prefix });
  const webhooks = new Queue(WEBHOOK_QUEUE, { connection: redis, prefix });
  // Connection errors surface as a failed scrape; without listeners BullMQ prints them raw.
  generate.on('error', () => {});
  webhooks.on('error', () => {});

  new Gauge({
    name: 'zimage_jobs',
    help: 'Generation jobs by queue state (completed and failed are those still retained; jobs held in fair-share lanes are waiting).',
    labelNames: ['state'],
    registers: [registry],
    async collect() {
      const [counts, held] = await Promise.all([generate.getJobCounts(...JOB_STATES), countHeldJobs(redis, prefix)]);
      // Held jobs sit in BullMQ's delayed set; they wait for their turn, not for a time.
      const heldNow = Math.min(held, counts['delayed'] ?? 0);
      for (const state of JOB_STATES) this.set({ state }, (counts[state] ?? 0) + (state === 'waiting' ? heldNow : state === 'delayed' ? -heldNow : 0));
    },
  });
  new Gauge({
    name: 'zimage_queue_paused',
    help: 'Whether the fleet is stopped (1), with the code of why (STORAGE_REFUSED, UPSTREAM_OUTAGE, UPSTREAM_BILLING, ...; "operator" for a manual pause).',
    labelNames: ['code'],
    registers: [registry],
    async collect() {
      this.reset();
      const paused = await generate.isPaused();
      const raw = paused ? await redis.get(pauseReasonKey(prefix)) : null;
      let code = 'operator';
      try {
        if (raw) code = String((JSON.parse(raw) as { code?: unknown }).code ?? code);
      } catch {
        // an unreadable reason is still a pause
      }
      if (paused) this.set({ code }, 1);
      else this.set({ code: 'none' }, 0);
    },
  });
  new Gauge({
    name: 'zimage_parked_jobs',
    help: 'Paid images held for an operator because storage can never accept their key (`zimage jobs parked`).',
    registers: [registry],
    async collect() {
      this.set(await redis.hlen(parkedJobsKey(prefix)));
    },
  });
  new Gauge({
    name: 'zimage_webhook_deliveries',
    help: 'Webhook deliveries by queue state (failed = dead letters).',
    labelNames: ['state'],
    registers: [registry],
    async collect() {
      const counts = await webhooks.getJobCounts('waiting', 'active', 'delayed', 'failed');
      for (const [state, n] of Object.entries(counts)) this.set({ state }, n);
    },
  });

  const totals = oncePerScrape(() => redis.hgetall(metricsTotalsKey(prefix)));
  new Counter({
    name: 'zimage_jobs_finished_total',
    help: 'Jobs that reached a terminal state, by outcome.',
    labelNames: ['outcome'],
    registers: [registry],
    async collect() {
      const t = await totals();
      this.reset();
      for (const outcome of ['succeeded', 'failed', 'expired', 'cancelled']) this.inc({ outcome }, Number(t[`jobs:${outcome}`] ?? 0));
    },
  });
  new Counter({
    name: 'zimage_images_stored_total',
    help: 'Images generated and stored.',
    registers: [registry],
    async collect() {
      this.reset();
      this.inc(Number((await totals())['imagesStored'] ?? 0));
    },
  });
  new Counter({
    name: 'zimage_estimated_spend_usd_total',
    help: 'Estimated spend on stored images at list prices (reference §4.2), US$.',
    registers: [registry],
    async collect() {
      this.reset();
      this.inc(Number((await totals())['costMicroUsd'] ?? 0) / 1e6);
    },
  });

  new Counter({
    name: 'zimage_render_cache_hits_total',
    help: 'Images served from the render cache: copied in storage, no upstream call.',
    registers: [registry],
    async collect() {
      this.reset();
      this.inc(Number((await totals())['imagesCached'] ?? 0));
    },
  });
  new Counter({
    name: 'zimage_render_cache_saved_usd_total',
    help: 'What the render cache hits would have cost at list prices, US$.',
    registers: [registry],
    async collect() {
      this.reset();
      this.inc(Number((await totals())['savedMicroUsd'] ?? 0) / 1e6);
    },
  });

  // Both upstream metrics come from one read per scrape.
  const readUpstream = oncePerScrape(() => readUpstreamMetrics(redis, prefix));
  new Counter({
    name: 'zimage_upstream_requests_total',
    help: 'Upstream (DashScope) generation calls by region and outcome code ("ok" for success).',
    labelNames: ['region', 'code'],
    registers: [registry],
    async collect() {
      this.reset();
      for (const r of (await readUpstream()).requests) this.inc({ region: r.region, code: r.code }, r.count);
    },
  });
  // prom-client cannot set a histogram's buckets; this metric object reports the buckets summed
  // in Redis in the same shape prom-client's own Histogram does.
  const latencyName = 'zimage_upstream_latency_seconds';
  const latencyHelp = 'Upstream generation call latency, seconds.';
  registry.registerMetric({
    name: latencyName,
    help: latencyHelp,
    type: 'histogram',
    aggregator: 'sum',
    reset() {},
    async get() {
      const values = (await readUpstream()).latency.flatMap((l) => [
        ...l.buckets.map((b) => ({ labels: { region: l.region, le: b.le }, value: b.count, metricName: `${latencyName}_bucket` })),
        { labels: { region: l.region }, value: l.sum, metricName: `${latencyName}_sum` },
        { labels: { region: l.region }, value: l.count, metricName: `${latencyName}_count` },
      ]);
      return { name: latencyName, help: latencyHelp, type: 'histogram', aggregator: 'sum', values };
    },
  } as unknown as Metric);

  const snapshots = () => readGovernorSnapshots(redis, prefix);
  for (const [name, help, field] of [
    ['zimage_quota_utilisation', 'Calls a minute over the sustainable pace, per account (governor).', 'utilisation'],
    ['zimage_throttle_ratio', 'Throttled share of upstream calls over the last minute, per account (governor).', 'throttleRatio'],
    ['zimage_pace_rpm', 'Current fleet-wide pace, requests a minute, per account (governor).', 'rpm'],
  ] as const) {
    new Gauge({
      name,
      help,
      labelNames: ['account', 'region'],
      registers: [registry],
      async collect() {
        this.reset();
        for (const s of await snapshots()) this.set({ account: s.id, region: s.region }, s[field]);
      },
    });
  }

  // Every budget's usage (and every lane's state) from one read per scrape.
  const readBudgets = oncePerScrape(async (): Promise<Array<{ budget: Budget; usage: BudgetUsage; parked: number }>> => {
    const store = new BudgetStore(redis, prefix);
    const now = Date.now();
    return Promise.all((await store.list()).map(async (budget) => ({ budget, usage: await store.usage(budget, now), parked: await store.countParked(budget.id) })));
  });
  for (const [name, help, value] of [
    ['zimage_budget_limit_usd', 'Each budget\'s limit for its current period, US$.', (b) => b.budget.limitUsd],
    ['zimage_budget_spent_usd', 'Billed calls counted against each budget in its current period, US$.', (b) => b.usage.spentUsd],
    ['zimage_budget_maybe_billed_usd', 'Calls whose outcome is unknown (timeout or reset after sending), counted against each budget, US$.', (b) => b.usage.maybeBilledUsd],
    ['zimage_budget_reserved_usd', 'Calls in flight reserved on each budget, US$.', (b) => b.usage.reservedUsd],
    ['zimage_budget_parked_jobs', 'Jobs parked on each budget until its period rolls over or it is raised.', (b) => b.parked],
  ] as const satisfies ReadonlyArray<readonly [string, string, (b: { budget: Budget; usage: BudgetUsage; parked: number }) => number]>) {
    new Gauge({
      name,
      help,
      labelNames: ['budget', 'scope', 'kind'],
      registers: [registry],
      async collect() {
        this.reset();
        for (const b of await readBudgets()) this.set({ budget: b.budget.id, scope: b.budget.scope, kind: b.budget.kind }, value(b));
      },
    });
  }
  const readLanes = oncePerScrape(() => readFairShare(redis, prefix));
  for (const [name, help, value] of [
    ['zimage_tenant_waiting_jobs', 'Jobs held in each tenant\'s fair-share lane, waiting for their turn ("" = no tenant).', (l) => l.waiting],
    ['zimage_tenant_share', 'Each tenant\'s share of the jobs admitted over the last two minutes (fair share).', (l) => l.share],
  ] as const satisfies ReadonlyArray<readonly [string, string, (l: LaneStatus) => number]>) {
    new Gauge({
      name,
      help,
      labelNames: ['tenant'],
      registers: [registry],
      async collect() {
        this.reset();
        for (const lane of (await readLanes()).lanes) this.set({ tenant: lane.tenant ?? '' }, value(lane));
      },
    });
  }

  // The three event-stream metrics come from one read per scrape.
  const readEventStream = oncePerScrape((): Promise<[length: number, groups: EventGroupStatus[]]> => Promise.all([redis.xlen(eventsStreamKey(prefix)), readEventGroups(redis, prefix)]));
  new Gauge({
    name: 'zimage_events_stream_length',
    help: 'Entries in the event stream (maxLen, more while a consumer group lags, at most the hard cap).',
    registers: [registry],
    async collect() {
      this.set((await readEventStream())[0]);
    },
  });
  new Gauge({
    name: 'zimage_events_group_lag',
    help: 'Events not yet delivered to each consumer group of the event stream (no sample while Redis cannot tell).',
    labelNames: ['group'],
    registers: [registry],
    async collect() {
      this.reset();
      for (const group of (await readEventStream())[1]) if (group.lag !== null) this.set({ group: group.name }, group.lag);
    },
  });
  new Gauge({
    name: 'zimage_events_group_pending',
    help: 'Events delivered to each consumer group of the event stream but not acknowledged yet.',
    labelNames: ['group'],
    registers: [registry],
    async collect() {
      this.reset();
      for (const group of (await readEventStream())[1]) this.set({ group: group.name }, group.pending);
    },
  });

  return {
    registry,
    async close() {
      await generate.close();
      await webhooks.close();
    },
  };
}
