/**
 * `pnpm bench` (full, under 20 min) and `pnpm bench -- --quick` (under 4 min): the scenarios of
 * docs/performance.md against the emulator and a private redis-server, everything compared
 * measured side by side in the same run. Prints a table; writes bench/results/latest.json and
 * latest.md. Tests assert behaviour; this is where speed is measured.
 *
 *   --only=quota|overhead|ingest|interactive|limiters|cache|fairness|budget   one scenario
 *   --only=limiters:fixed-window[,drift…]               some limiter models
 *   --out=DIR                                           results elsewhere (default bench/results)
 */
import type { Emulator, LimiterModel } from '@zimage/emulator';
import { mkdirSync, writeFileSync } from 'node:fs';
import { cpus, totalmem } from 'node:os';
import { resolve } from 'node:path';
import { startRedisServer } from '@zimage/shared';
import type { FleetBatchRun } from './fleet.js';
import { runBudgetOverrunScenario } from './scenarios/budget-overrun.js';
import { runCacheScenario } from './scenarios/cache.js';
import { runFairnessScenario } from './scenarios/fairness.js';
import { runIngestScenario } from './scenarios/ingest.js';
import { runInteractiveScenario } from './scenarios/interactive.js';
import {
  ALL_LIMITER_MODELS,
  LIMITER_PLANS,
  LIMITER_RATE_PER_MINUTE,
  describePlan,
  limitersMarkdown,
  limitersSummary,
  measureLimiterRun,
  modelSpec,
  runLimitersScenario,
  type LimiterRun,
} from './scenarios/limiters.js';
import { runOverheadScenario } from './scenarios/overhead.js';
import { runQuotaScenario, type QuotaRun } from './scenarios/quota.js';
import { killAllChildren, ROOT } from './support.js';

const SCENARIOS = ['quota', 'overhead', 'ingest', 'interactive', 'limiters', 'cache', 'fairness', 'budget'] as const;
const quick = process.argv.includes('--quick');
const arg = (name: string) => process.argv.find((a) => a.startsWith(`--${name}=`))?.slice(name.length + 3);
const [only, onlyModels] = (arg('only') ?? '').split(':') as [string, string | undefined];
const outDir = resolve(arg('out') ?? `${ROOT}bench/results`);
const startedAt = Date.now();
const log = (line: string) => process.stderr.write(`[${String(Math.round((Date.now() - startedAt) / 1000)).padStart(4)} s] ${line}\n`);
if (only && !(SCENARIOS as readonly string[]).includes(only)) {
  log(`bench: --only=${only}: expected one of ${SCENARIOS.join(', ')} (limiters:MODEL[,MODEL] for some limiter models)`);
  process.exit(2);
}
const models = (onlyModels ? onlyModels.split(',') : ALL_LIMITER_MODELS) as LimiterModel[];
const unknownModel = models.find((m) => !ALL_LIMITER_MODELS.includes(m));
if (unknownModel || (onlyModels && only !== 'limiters')) {
  log(`bench: unknown limiter model '${unknownModel ?? onlyModels}': expected --only=limiters:${ALL_LIMITER_MODELS.join('|')}`);
  process.exit(2);
}
const runs = (name: (typeof SCENARIOS)[number]) => !only || only === name;

// Sizes, estimated on an idle 2-CPU machine (docs/performance.md, "Limiter models"): full ≈ quota
// 6.2 min + limiters 9 + overhead ~1 + ingest ~0.5 + interactive ~1–3 < 20 min; quick ≈ quota 1.1 +
// limiters 2 + the rest ~0.8 < 4 min. A shared, busy machine stretches the fleets' start-up most.
const plan = quick
  ? { quotaJobs: 400, misconfiguredJobs: 150, quotaPerMinute: 1200, baselineLimitSeconds: 12, bullmqLimitSeconds: 8, overheadJobs: 1000, ingestRows: 20_000, bulkJobs: 400, priorityJobs: 12, cacheRows: 2000, fairBulkJobs: 2000, fairSmallJobs: 100, budgetJobs: 300, budgetFits: 100 }
  : { quotaJobs: 1200, misconfiguredJobs: 600, quotaPerMinute: 600, baselineLimitSeconds: 60, bullmqLimitSeconds: 40, overheadJobs: 12_000, ingestRows: 100_000, bulkJobs: 1500, priorityJobs: 25, cacheRows: 20_000, fairBulkJobs: 10_000, fairSmallJobs: 200, budgetJobs: 600, budgetFits: 200 };
const limiterPlan = LIMITER_PLANS[quick ? 'quick' : 'full'];

const redis = await startRedisServer();
// Whatever happens — a signal, a hang past every per-run limit — no child outlives the bench.
let aborted = false;
const abort = async (why: string, code: number) => {
  aborted = true;
  log(`bench: ${why}; stopping workers and redis (no results written)`);
  killAllChildren();
  await redis.stop().catch(() => {});
  process.exit(code);
};
for (const signal of ['SIGINT', 'SIGTERM'] as const) process.once(signal, () => void abort(signal, 130));
const watchdogMinutes = quick ? 10 : 45;
setTimeout(() => void abort(`still running after ${watchdogMinutes} min (watchdog)`, 124), watchdogMinutes * 60_000).unref();

const started = startedAt;
const results: Record<string, unknown> = {};
const attempt = async (name: string, run: () => Promise<unknown>) => {
  const t0 = Date.now();
  try {
    results[name] = await run();
  } catch (error) {
    log(`  ${name} failed: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}`);
    results[name] = { error: error instanceof Error ? error.message : String(error) };
  }
  log(`  (${name}: ${Math.round((Date.now() - t0) / 1000)} s)`);
};
let perSecondZimage: { run: LimiterRun; jobs: number; from: string } | undefined;
try {
  if (runs('quota')) {
    log(`1. quota efficiency: ${plan.quotaJobs} jobs, quota ${plan.quotaPerMinute}/min (${plan.quotaPerMinute / 60}/s), ramp guard on, latency 0.3–0.8 s`);
    // At 600/min this run is exactly the limiters scenario's per-second row: measured once, used twice.
    const reuse = plan.quotaPerMinute === LIMITER_RATE_PER_MINUTE && runs('limiters') && models.includes('per-second');
    const inspectRight = (emulator: Emulator, run: FleetBatchRun) => {
      const spec = modelSpec('per-second', { ...limiterPlan, perSecondJobs: plan.quotaJobs });
      perSecondZimage = { run: measureLimiterRun(emulator, 'zimage', spec, run), jobs: plan.quotaJobs, from: "the quota scenario's ZIMAGE_RPM-right run" };
    };
    await attempt('quota', () =>
      runQuotaScenario(
        {
          redisUrl: redis.url,
          jobs: plan.quotaJobs,
          quotaPerMinute: plan.quotaPerMinute,
          baselineLimitSeconds: plan.baselineLimitSeconds,
          bullmqLimitSeconds: plan.bullmqLimitSeconds,
          misconfiguredJobs: plan.misconfiguredJobs,
          runsInPairs: quick,
          ...(reuse ? { inspectRight } : {}),
        },
        log,
      ),
    );
  }
  if (runs('overhead')) {
    log(`2. pipeline overhead: ${plan.overheadJobs} jobs, unlimited instant upstream, 512×512 to a folder`);
    await attempt('overhead', () => runOverheadScenario({ redisUrl: redis.url, jobs: plan.overheadJobs }));
  }
  if (runs('ingest')) {
    log(`3. ingest: zimage batch of a ${plan.ingestRows}-row CSV`);
    await attempt('ingest', () => runIngestScenario({ redisUrl: redis.url, rows: plan.ingestRows }));
  }
  if (runs('interactive')) {
    log(`4. interactive under backlog: ${plan.priorityJobs} priority jobs behind ${plan.bulkJobs} bulk jobs`);
    await attempt('interactive', () => runInteractiveScenario({ redisUrl: redis.url, bulkJobs: plan.bulkJobs, priorityJobs: plan.priorityJobs, quotaPerMinute: 600 }));
  }
  if (runs('limiters')) {
    const scale = describePlan(limiterPlan);
    log(`5. limiter models at ${LIMITER_RATE_PER_MINUTE}/min: ${models.join(', ')}; zimage (4 workers, ZIMAGE_RPM=${LIMITER_RATE_PER_MINUTE}) vs naive p-limit 4 and 16`);
    log(`   scale (${scale.mode}): ${scale.windowScale}; token bucket ${scale.bucketSize}; concurrency cap ${scale.maxInFlight}; drift 600/min for ${limiterPlan.drift.highMs / 1000} s → ${limiterPlan.drift.lowRpm}/min for ${limiterPlan.drift.lowMs / 1000} s → 600/min (${limiterPlan.drift.afterMs / 1000} s of jobs)`);
    log(`   ${scale.order}${perSecondZimage ? "; per-second zimage row = the quota scenario's run" : ''}`);
    await attempt('limiters', () => runLimitersScenario({ redisUrl: redis.url, plan: limiterPlan, models, ...(perSecondZimage ? { perSecondZimage } : {}) }, log));
  }
  if (runs('cache')) {
    log(`6. render cache: a ${plan.cacheRows}-row seeded CSV with cache: true, run, then re-run as a new batch`);
    await attempt('cache', () => runCacheScenario({ redisUrl: redis.url, rows: plan.cacheRows }));
  }
  if (runs('fairness')) {
    log(`7. fair share: tenant A enqueues ${plan.fairBulkJobs}, then B and C ${plan.fairSmallJobs} each at equal weight (2 workers, ZIMAGE_FAIR_SHARE, 1200/min quota)`);
    await attempt('fairness', () => runFairnessScenario({ redisUrl: redis.url, bulkJobs: plan.fairBulkJobs, smallJobs: plan.fairSmallJobs }));
  }
  if (runs('budget')) {
    log(`8. budget overrun: a hard budget that fits ${plan.budgetFits} images, ${plan.budgetJobs} jobs, 2 workers × 32, 5% of calls dropped after billing`);
    await attempt('budget', () => runBudgetOverrunScenario({ redisUrl: redis.url, jobs: plan.budgetJobs, fits: plan.budgetFits }));
  }
} finally {
  await redis.stop();
}

// Interrupted: the scenarios saw their children die; what they return is not a result.
if (aborted) await new Promise(() => {});

type Quota = { zimage: QuotaRun; baselines: { naive: QuotaRun; bullmqLimiter: QuotaRun }; misconfigured: Record<string, QuotaRun> };
const ok = <T>(value: unknown): T | undefined => (value && typeof value === 'object' && !('error' in value) ? (value as T) : undefined);
const quota = ok<Quota>(results['quota']);
const limiters = ok<Awaited<ReturnType<typeof runLimitersScenario>>>(results['limiters']);
const report = {
  // The quota scenario's headline figures at the top level, as the issue specifies.
  efficiency: quota?.zimage.efficiency,
  throttleRatio: quota?.zimage.throttleRatio,
  baselines: quota
    ? {
        naive: { efficiency: quota.baselines.naive.efficiency, throttleRatio: quota.baselines.naive.throttleRatio },
        bullmqLimiter: { efficiency: quota.baselines.bullmqLimiter.efficiency, throttleRatio: quota.baselines.bullmqLimiter.throttleRatio },
      }
    : undefined,
  limiters: limiters ? limitersSummary(limiters.models) : undefined,
  mode: quick ? 'quick' : 'full',
  date: new Date().toISOString(),
  machine: { cpus: cpus().length, memoryGb: Math.round(totalmem() / 2 ** 30), node: process.version },
  seconds: Math.round((Date.now() - started) / 1000),
  plan: { ...plan, limiters: describePlan(limiterPlan) },
  scenarios: results,
};

const lines: string[] = [`# zimage bench (${report.mode}, ${report.date})`, '', `${report.machine.cpus} CPUs, ${report.machine.memoryGb} GB, Node ${report.machine.node}; ${report.seconds} s.`, ''];
for (const [name, value] of Object.entries(results)) {
  if (value && typeof value === 'object' && 'error' in value) lines.push(`**${name} failed:** ${String((value as { error: unknown }).error)}`, '');
}
if (quota) {
  const mark = (okay: boolean) => (okay ? '✓' : '✗');
  lines.push(
    '## 1. Quota efficiency',
    '',
    `Quota ${plan.quotaPerMinute}/min; the p-limit baseline stops after ${plan.baselineLimitSeconds} s, BullMQ's after ${plan.bullmqLimitSeconds} s, and each is measured over the jobs it finished.`,
    '',
    '| run | efficiency | throttle ratio | jobs done | seconds | upstream requests | billed | goal |',
    '|---|---|---|---|---|---|---|---|',
  );
  const row = (name: string, r: QuotaRun, goal = '—') =>
    lines.push(`| ${name} | ${r.efficiency} | ${r.throttleRatio} | ${r.completed}/${r.jobs}${r.timedOut ? ' (time limit)' : ''} | ${r.seconds} | ${r.requests} | ${r.billed} | ${goal} |`);
  row('zimage', quota.zimage, `≥ 0.97, ≤ 0.005 ${mark(quota.zimage.efficiency >= 0.97 && quota.zimage.throttleRatio <= 0.005)}`);
  row('naive p-limit + backoff', quota.baselines.naive);
  row('BullMQ limiter', quota.baselines.bullmqLimiter);
  for (const [name, r] of Object.entries(quota.misconfigured)) row(`zimage, ${name}`, r, `≥ 0.95 ${mark(r.efficiency >= 0.95)}`);
  lines.push('');
}
const overhead = ok<Record<string, unknown>>(results['overhead']);
if (overhead) lines.push('## 2. Pipeline overhead', '', '```json', JSON.stringify(overhead, null, 2), '```', '');
const ingest = ok<Record<string, unknown>>(results['ingest']);
if (ingest) lines.push('## 3. Ingest', '', '```json', JSON.stringify(ingest, null, 2), '```', '');
const interactive = ok<Record<string, unknown>>(results['interactive']);
if (interactive) lines.push('## 4. Interactive under backlog', '', '```json', JSON.stringify(interactive, null, 2), '```', '');
if (limiters) lines.push(...limitersMarkdown(limiters, `## 5. Limiter models (${LIMITER_RATE_PER_MINUTE}/min)`));
const cache = ok<Awaited<ReturnType<typeof runCacheScenario>>>(results['cache']);
if (cache) {
  lines.push(
    '## 6. Render cache re-run',
    '',
    `A ${cache.rows}-row seeded CSV with \`cache: true\`, run, then re-run as a new batch (new keys).`,
    '',
    '| run | seconds | upstream calls | cached | cost US$ | saved US$ |',
    '|---|---|---|---|---|---|',
    `| first | ${cache.first.seconds} | ${cache.first.upstreamCalls} | ${cache.first.cached} | ${cache.first.costUsd} | ${cache.first.savedUsd} |`,
    `| re-run | ${cache.rerun.seconds} | ${cache.rerun.upstreamCalls} | ${cache.rerun.cached} | ${cache.rerun.costUsd} | ${cache.rerun.savedUsd} |`,
    '',
    `Re-run / first wall time: ${cache.rerunToFirstTime}. Index: ${cache.index.entries} entries, ${cache.index.megabytes} MB (${cache.index.bytesPerEntry} bytes each). Goal (0 upstream calls on the re-run): ${cache.goal.met ? '✓' : '✗'}`,
    '',
  );
}

const fairness = ok<Awaited<ReturnType<typeof runFairnessScenario>>>(results['fairness']);
if (fairness) {
  lines.push(
    '## 7. Fair share between tenants',
    '',
    `Tenant A: ${fairness.bulkJobs} jobs queued first; B and C: ${fairness.smallJobs} each, enqueued while A's backlog waits; equal weights; quota ${fairness.rpm}/min.`,
    '',
    '| tenant | seconds to finish | implied by its share | ratio | goal |',
    '|---|---|---|---|---|',
    `| B | ${fairness.B.seconds} | ${fairness.B.impliedSeconds} | ${fairness.B.ratio} | ≤ ${fairness.goal.ratio} ${fairness.B.ratio <= fairness.goal.ratio ? '✓' : '✗'} |`,
    `| C | ${fairness.C.seconds} | ${fairness.C.impliedSeconds} | ${fairness.C.ratio} | ≤ ${fairness.goal.ratio} ${fairness.C.ratio <= fairness.goal.ratio ? '✓' : '✗'} |`,
    '',
    `Achieved shares while all three had work (target ${fairness.shares.target}): A ${fairness.shares.A}, B ${fairness.shares.B}, C ${fairness.shares.C}. Fleet ${fairness.fleetJobsPerSecond} jobs/s meanwhile vs A alone ${fairness.aloneJobsPerSecond} (${fairness.fleetToAlone}).`,
    '',
  );
}
const budget = ok<Awaited<ReturnType<typeof runBudgetOverrunScenario>>>(results['budget']);
if (budget) {
  lines.push(
    '## 8. Worst budget overrun',
    '',
    `A hard budget of US$${budget.limitUsd} (${budget.imagesThatFit} images), ${budget.jobs} jobs, up to ${budget.peakReservedCalls} calls reserved at once, 5% dropped after billing.`,
    '',
    '| billed (emulator) | spent (zimage) | maybe billed | upstream calls | parked | worst overrun US$ | goal |',
    '|---|---|---|---|---|---|---|',
    `| ${budget.billedUsd} | ${budget.spentUsd} | ${budget.maybeBilledUsd} | ${budget.upstreamCalls} | ${budget.parkedJobs} | ${budget.worstOverrunUsd} | 0 ${budget.goal.met ? '✓' : '✗'} |`,
    '',
  );
}

mkdirSync(outDir, { recursive: true });
writeFileSync(`${outDir}/latest.json`, `${JSON.stringify(report, null, 2)}\n`);
writeFileSync(`${outDir}/latest.md`, `${lines.join('\n')}\n`);
process.stdout.write(`${lines.join('\n')}\n`);
process.exit(0);
