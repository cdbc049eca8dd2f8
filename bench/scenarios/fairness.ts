/**
 * Scenario 7 — fair share between tenants. Two worker processes with ZIMAGE_FAIR_SHARE on, one
 * account whose quota the emulator enforces. Tenant A enqueues a bulk backlog and runs alone for
 * a while (its throughput alone is measured); then tenants B and C enqueue a few hundred each, at
 * equal weight. Measured from their enqueue: when B and C finish, against the time their share
 * implies (their jobs ÷ (⅓ × the fleet's throughput meanwhile)); each tenant's achieved share
 * while all three had work, against ⅓; and the fleet's throughput meanwhile against A's alone
 * (A takes every slot B and C leave). A's remaining backlog is dropped at the end.
 */
import { round, sleep } from '../support.js';
import { startFleet } from '../fleet.js';

const RPM = 1200;
const GOAL_RATIO = 1.2;

interface Sample {
  at: number;
  a: number;
  b: number;
  c: number;
}

export async function runFairnessScenario(options: { redisUrl: string; bulkJobs: number; smallJobs: number }) {
  const fleet = await startFleet({
    redisUrl: options.redisUrl,
    emulator: { latency: { minMs: 100, maxMs: 300, extendExtraMinMs: 0, extendExtraMaxMs: 0 }, quota: { rpm: RPM, rps: RPM / 60 }, images: 'template' },
    workers: 2,
    rpm: RPM,
    concurrency: 32,
    env: { ZIMAGE_FAIR_SHARE: 'true' },
  });
  const requests = (tenant: string, n: number) => Array.from({ length: n }, (_, i) => ({ prompt: `Catalogue item ${tenant} ${i}`, size: '512*512', tenant }));
  const limitMs = Math.max(300_000, options.smallJobs * 3 * 1000);
  try {
    // Workers write the setting at start-up; the fleet is up when they have registered.
    const a = await fleet.producer.enqueueMany(requests('A', options.bulkJobs));
    const done = async (batchId: string) => (await fleet.producer.getBatch(batchId))?.succeeded ?? 0;
    const samples: Sample[] = [];
    const sample = async (b?: string, c?: string) => {
      const s = { at: Date.now(), a: await done(a.batchId), b: b ? await done(b) : 0, c: c ? await done(c) : 0 };
      samples.push(s);
      return s;
    };
    // A alone: past the governor's start-up, then 10 s of its steady throughput.
    for (let s = await sample(); s.a < 100; s = await sample()) {
      if (Date.now() - (samples[0]?.at ?? 0) > limitMs) throw new Error('tenant A made no progress');
      await sleep(100);
    }
    const aloneFrom = await sample();
    await sleep(10_000);
    const aloneTo = await sample();
    const aloneRate = (aloneTo.a - aloneFrom.a) / ((aloneTo.at - aloneFrom.at) / 1000);

    const [b, c] = await Promise.all([fleet.producer.enqueueMany(requests('B', options.smallJobs)), fleet.producer.enqueueMany(requests('C', options.smallJobs))]);
    const from = await sample(b.batchId, c.batchId);
    let bDone: Sample | undefined;
    let cDone: Sample | undefined;
    for (;;) {
      const s = await sample(b.batchId, c.batchId);
      bDone ??= s.b >= options.smallJobs ? s : undefined;
      cDone ??= s.c >= options.smallJobs ? s : undefined;
      if (bDone && cDone) break;
      if (s.at - from.at > limitMs) throw new Error('tenants B and C did not finish in time');
      await sleep(100);
    }
    const end = bDone.at > cDone.at ? bDone : cDone;
    const firstEnd = bDone.at < cDone.at ? bDone : cDone;
    const seconds = (x: Sample) => (x.at - from.at) / 1000;
    const total = (x: Sample) => x.a + x.b + x.c;
    const fleetRate = (total(end) - total(from)) / seconds(end);
    // While all three had work: from B and C's enqueue until the first of them finished.
    const sharedJobs = total(firstEnd) - total(from);
    const share = (k: 'a' | 'b' | 'c') => round((firstEnd[k] - from[k]) / Math.max(1, sharedJobs), 3);
    const impliedSeconds = options.smallJobs / (fleetRate / 3);
    const tenant = (done: Sample) => ({ seconds: round(seconds(done), 1), impliedSeconds: round(impliedSeconds, 1), ratio: round(seconds(done) / impliedSeconds, 2) });
    const result = {
      bulkJobs: options.bulkJobs,
      smallJobs: options.smallJobs,
      rpm: RPM,
      aloneJobsPerSecond: round(aloneRate, 2),
      fleetJobsPerSecond: round(fleetRate, 2),
      fleetToAlone: round(fleetRate / Math.max(0.001, aloneRate), 2),
      B: tenant(bDone),
      C: tenant(cDone),
      shares: { target: round(1 / 3, 3), A: share('a'), B: share('b'), C: share('c') },
    };
    return { ...result, goal: { ratio: GOAL_RATIO, met: result.B.ratio <= GOAL_RATIO && result.C.ratio <= GOAL_RATIO } };
  } finally {
    await fleet.close();
  }
}
