/**
 * Scenario 5 — limiter models. The emulator enforces the same 600/min quota six ways (per-second
 * with the ramp guard, fixed window, sliding log, token bucket, a concurrency cap, a quota that
 * drifts down and back); for each, the same jobs go through zimage (four worker processes,
 * ZIMAGE_RPM = 600, the true quota) and through the naive p-limit script at concurrency 4 and 16,
 * each against a fresh emulator with the same model.
 *
 *   efficiency    = images stored / limiter.capacity(start, end)   (the model's true capacity over
 *                   the run's wall time: a window model's first-window burst cannot lift it over 1)
 *   throttleRatio = throttled / all requests the limiter saw in [start, end)   (limiter.counts())
 *
 * Windows are scaled down to fit the bench's time budget (see `LimiterPlan`); the governor's own
 * memory is 60 s, so a shorter window only makes the feedback it gets faster.
 *
 * Full: each zimage run alone, one after the other; then all naive runs at once, each in a child
 * process with its own emulator (bench/naive-child.ts; they are light — p-limit and fetch — and
 * each run's event-loop delay is reported). Quick: two zimage runs at a time, then the naive runs.
 */
import type { LimiterModel } from '@zimage/emulator';
import { runBatch, startFleet, type Fleet, type FleetBatchRun } from '../fleet.js';
import {
  LIMITER_RATE_PER_MINUTE,
  LIMITER_WORKERS as WORKERS,
  LATENCY,
  measureLimiterRun,
  modelSpec,
  naiveLimitSeconds,
  type LimiterPlan,
  type LimiterRun,
  type ModelSpec,
} from './limiter-models.js';
import { spawnNode, watchEventLoop, withTimeout, type WorkerProcess } from '../support.js';

export { ALL_LIMITER_MODELS, LIMITER_PLANS, LIMITER_RATE_PER_MINUTE, measureLimiterRun, modelSpec, type LimiterPlan, type LimiterRun } from './limiter-models.js';

/** A zimage run is stopped after 1.5 × the even pacer's time + 30 s at most. */
function zimageLimitMs(spec: ModelSpec): number {
  return 1.5 * spec.evenSeconds * 1000 + 30_000;
}

async function measureZimage(fleet: Fleet, spec: ModelSpec): Promise<LimiterRun> {
  const loop = watchEventLoop();
  const run: FleetBatchRun = await runBatch(fleet, spec.jobs, zimageLimitMs(spec)).catch((error: unknown) => {
    loop.stop();
    throw error;
  });
  return measureLimiterRun(fleet.emulator, 'zimage', spec, run, loop.stop());
}

function startModelFleet(redisUrl: string, spec: ModelSpec, startupTimeoutMs?: number): Promise<Fleet> {
  return startFleet({ redisUrl, emulator: spec.emulator, workers: WORKERS, rpm: LIMITER_RATE_PER_MINUTE, bundled: true, ...(startupTimeoutMs ? { startupTimeoutMs } : {}) });
}

export type RunOrError = LimiterRun | { error: string };

/**
 * Every model's naive runs (concurrency 4 and 16), each in a child process of its own
 * (bench/naive-child.ts: its emulator and its client), all started together once all are loaded.
 * Keyed `model:concurrency`.
 */
async function runNaiveChildren(specs: readonly ModelSpec[], plan: LimiterPlan): Promise<Map<string, RunOrError>> {
  type Message = { type: 'ready' } | { type: 'result'; result: LimiterRun } | { type: 'error'; error: string };
  const runs = specs.flatMap((spec) => ([4, 16] as const).map((concurrency) => ({ spec, concurrency, key: `${spec.model}:${concurrency}` })));
  const children: { key: string; child: WorkerProcess; ready: Promise<void>; done: Promise<RunOrError> }[] = runs.map(({ spec, concurrency, key }) => {
    const child = spawnNode(['bench/naive-child.ts'], { BENCH_NAIVE: JSON.stringify({ model: spec.model, plan, jobs: spec.jobs, concurrency }) }, { ipc: true });
    let onReady: () => void = () => {};
    const ready = new Promise<void>((resolve) => (onReady = resolve));
    const done = new Promise<RunOrError>((resolve) => {
      child.child.on('message', (message: Message) => {
        if (message.type === 'ready') onReady();
        else resolve(message.type === 'result' ? message.result : { error: message.error });
      });
      child.child.once('exit', (code) => resolve({ error: `naive child exited (${code})` }));
    });
    return { key, child, ready, done };
  });
  const results = new Map<string, RunOrError>();
  try {
    await withTimeout(Promise.all(children.map((c) => Promise.race([c.ready, c.done]))), 120_000, 'starting the naive baselines');
    for (const c of children) c.child.child.send?.('go');
    const longest = Math.max(...specs.map((spec) => naiveLimitSeconds(spec, plan)));
    await withTimeout(Promise.all(children.map(async (c) => results.set(c.key, await c.done))), (longest + 60) * 1000, 'the naive baselines').catch(() => {});
  } catch (error) {
    for (const c of children) if (!results.has(c.key)) results.set(c.key, failed(error));
  } finally {
    await Promise.all(children.map((c) => c.child.stop()));
  }
  for (const c of children) if (!results.has(c.key)) results.set(c.key, { error: 'naive baseline timed out' });
  return results;
}
export interface ModelResult {
  model: LimiterModel;
  describe: string;
  jobs: number;
  /** Where the zimage row comes from when not run here. */
  zimageFrom?: string;
  zimage: RunOrError;
  naive4: RunOrError;
  naive16: RunOrError;
}

const failed = (error: unknown): { error: string } => ({ error: error instanceof Error ? error.message : String(error) });
const settle = (p: Promise<LimiterRun>): Promise<RunOrError> => p.catch(failed);

export interface LimitersOptions {
  redisUrl: string;
  plan: LimiterPlan;
  models: readonly LimiterModel[];
  /** The per-second zimage run, measured already (the quota scenario's `ZIMAGE_RPM`-right run). */
  perSecondZimage?: { run: LimiterRun; jobs: number; from: string };
}

export async function runLimitersScenario(options: LimitersOptions, log: (line: string) => void) {
  const { plan } = options;
  const specs = options.models.map((model) => {
    const spec = modelSpec(model, plan);
    return model === 'per-second' && options.perSecondZimage ? { ...spec, jobs: options.perSecondZimage.jobs } : spec;
  });
  const reused = (spec: ModelSpec) => (spec.model === 'per-second' ? options.perSecondZimage : undefined);
  const zimage = new Map<LimiterModel, RunOrError>();
  const naive = new Map<string, RunOrError>();
  // zimage: `fleetsAtOnce` models at a time (longest first, so each wave's runs end together);
  // a wave's fleets close while the next wave's start (nothing is measured then), and are gone
  // before the next wave's runs begin.
  const toRun = specs.filter((s) => !reused(s)).sort((a, b) => b.evenSeconds - a.evenSeconds);
  const closing: Promise<void>[] = [];
  try {
    for (let i = 0; i < toRun.length; i += plan.fleetsAtOnce) {
      const wave = toRun.slice(i, i + plan.fleetsAtOnce);
      log(`  zimage: ${wave.map((spec) => `${spec.model} (${spec.describe}), ${spec.jobs} jobs`).join(' ‖ ')}…`);
      const fleets = await Promise.all(wave.map((spec) => startModelFleet(options.redisUrl, spec, 60_000 * wave.length).catch(failed)));
      await Promise.all(closing.splice(0)); // the previous wave is gone before this one is measured
      try {
        await Promise.all(
          wave.map(async (spec, j) => {
            const fleet = fleets[j] as Fleet | { error: string };
            const z = 'error' in fleet ? fleet : await settle(measureZimage(fleet, spec));
            zimage.set(spec.model, z);
            log(`    ${spec.model}: ${'error' in z ? `error: ${z.error}` : `efficiency ${z.efficiency}, throttle ratio ${z.throttleRatio}, ${z.completed}/${z.jobs} jobs in ${z.seconds} s`}`);
          }),
        );
      } finally {
        for (const f of fleets) if (!('error' in f)) closing.push(f.close());
      }
    }
  } finally {
    await Promise.all(closing);
  }
  // The naive baselines: light (no workers), so all at once, each in a process of its own.
  const longest = Math.max(...specs.map((s) => naiveLimitSeconds(s, plan)));
  log(`  naive p-limit 4 and 16: ${specs.length * 2} runs at once, each in its own process with its own emulator, each stopped after its model's even-pace time + 5 s (≤ ${Math.round(longest)} s)…`);
  for (const [key, run] of await runNaiveChildren(specs, plan)) naive.set(key, run);

  const models: ModelResult[] = specs.map((spec) => {
    const from = reused(spec);
    return {
      model: spec.model,
      describe: spec.describe,
      jobs: spec.jobs,
      ...(from ? { zimageFrom: from.from } : {}),
      zimage: from ? from.run : (zimage.get(spec.model) ?? { error: 'not run' }),
      naive4: naive.get(`${spec.model}:4`) ?? { error: 'not run' },
      naive16: naive.get(`${spec.model}:16`) ?? { error: 'not run' },
    };
  });
  return { plan: describePlan(plan), models };
}

/** The scale the scenario ran at, in words, for the log, latest.json and latest.md. */
export function describePlan(plan: LimiterPlan) {
  return {
    mode: plan.mode,
    ratePerMinute: LIMITER_RATE_PER_MINUTE,
    workers: WORKERS,
    zimageRpm: LIMITER_RATE_PER_MINUTE,
    latencyMs: LATENCY,
    windowMs: plan.windowMs,
    windowScale: `windows of ${plan.windowMs / 1000} s instead of 60 s (÷${60_000 / plan.windowMs}), ${plan.windows} windows of jobs`,
    bucketSize: plan.bucketSize,
    maxInFlight: plan.maxInFlight,
    drift: plan.drift,
    order: `${plan.fleetsAtOnce === 1 ? 'zimage runs one at a time' : `zimage runs ${plan.fleetsAtOnce} at a time`}; then all naive runs at once`,
    limits: `zimage: 1.5 × even-pace time + 30 s; naive: even-pace time + 5 s, at most ${plan.naiveLimitSeconds} s, measured over what finished`,
  };
}

/** A model's run under the issue's goals. `undefined`: not applicable or not measured. */
export function limiterGoals(m: ModelResult) {
  const z = 'error' in m.zimage ? undefined : m.zimage;
  const n4 = 'error' in m.naive4 ? undefined : m.naive4;
  const n16 = 'error' in m.naive16 ? undefined : m.naive16;
  const fewerThrottles = (n: LimiterRun | undefined) => (z && n ? z.throttleRatio < n.throttleRatio || (z.throttleRatio === 0 && n.throttleRatio === 0) : undefined);
  const notLessEfficient = (n: LimiterRun | undefined) => (z && n ? z.efficiency >= n.efficiency : undefined);
  const both = (a: boolean | undefined, b: boolean | undefined) => (a === undefined || b === undefined ? undefined : a && b);
  return {
    efficiency95: z ? z.efficiency >= 0.95 : undefined,
    throttles1Percent: z ? z.throttleRatio <= 0.01 : undefined,
    fewerThrottlesThanNaive: both(fewerThrottles(n4), fewerThrottles(n16)),
    efficiencyNotBelowNaive: both(notLessEfficient(n4), notLessEfficient(n16)),
    ...(m.model === 'per-second' ? { ownEmulator97: z ? z.efficiency >= 0.97 && z.throttleRatio <= 0.005 : undefined } : {}),
    ...(m.model === 'drift'
      ? {
          dropWithin10s: z?.drift ? z.drift.dropLagSeconds !== null && z.drift.dropLagSeconds <= 10 : undefined,
          recoveryWithin60s: z?.drift ? z.drift.recoveryLagSeconds !== null && z.drift.recoveryLagSeconds <= 60 : undefined,
        }
      : {}),
  };
}

/** `latest.json`'s top-level `limiters`: `{model}.{efficiency, throttleRatio, baselines.{naive4, naive16}}`, plus the drift lags. */
export function limitersSummary(models: readonly ModelResult[]) {
  const pick = (r: RunOrError) => ('error' in r ? { error: r.error } : { efficiency: r.efficiency, throttleRatio: r.throttleRatio });
  return Object.fromEntries(
    models.map((m) => {
      const z = m.zimage;
      const entry: Record<string, unknown> = { ...pick(z), baselines: { naive4: pick(m.naive4), naive16: pick(m.naive16) } };
      if (!('error' in z) && z.drift) {
        entry['dropLagSeconds'] = z.drift.dropLagSeconds;
        entry['recoveryLagSeconds'] = z.drift.recoveryLagSeconds;
      }
      return [m.model, entry];
    }),
  );
}

/** Above this p99 event-loop delay a run's figures are flagged as taken on a busy machine. */
const BUSY_LOOP_P99_MS = 100;
const mark = (ok: boolean | undefined) => (ok === undefined ? '—' : ok ? '✓' : '✗');

/** The markdown section: a headline table with the goals, and every run's detail. */
export function limitersMarkdown(result: Awaited<ReturnType<typeof runLimitersScenario>>, heading: string): string[] {
  const { plan, models } = result;
  const fmt = (r: RunOrError) => ('error' in r ? `error: ${r.error}` : `${r.efficiency} / ${r.throttleRatio}${r.timedOut && r.client === 'zimage' ? ' (time limit)' : ''}`);
  const lines = [
    heading,
    '',
    `${plan.ratePerMinute}/min quota, ${plan.workers} worker processes with ZIMAGE_RPM=${plan.zimageRpm}, latency ${plan.latencyMs.minMs}–${plan.latencyMs.maxMs} ms. **Scale (${plan.mode}): ${plan.windowScale}.** Order: ${plan.order}. Limits: ${plan.limits}.`,
    '',
    'Cells: efficiency / throttle ratio. Efficiency = images stored / the model\'s true capacity over the run (`limiter.capacity`); "even-pace bound" = what a client sending evenly at the sustainable rate from its first request would score with these jobs.',
    '',
    '| model | zimage | naive p-limit 4 | naive p-limit 16 | even-pace bound | ≥ 0.95 | ≤ 0.01 | fewer throttles than both naive | efficiency ≥ both naive | other goals |',
    '|---|---|---|---|---|---|---|---|---|---|',
  ];
  for (const m of models) {
    const g = limiterGoals(m);
    const z = 'error' in m.zimage ? undefined : m.zimage;
    const other: string[] = [];
    if ('ownEmulator97' in g) other.push(`own emulator ≥ 0.97 / ≤ 0.005 ${mark(g.ownEmulator97)}`);
    if ('dropWithin10s' in g) {
      other.push(`drop ${z?.drift ? (z.drift.dropLagSeconds === null ? 'never' : `${z.drift.dropLagSeconds} s`) : '—'} ≤ 10 s ${mark(g.dropWithin10s)}`);
      other.push(`recovery ${z?.drift ? (z.drift.recoveryLagSeconds === null ? `> ${z.drift.observedAfterRestoreSeconds} s` : `${z.drift.recoveryLagSeconds} s`) : '—'} ≤ 60 s ${mark(g.recoveryWithin60s)}`);
    }
    lines.push(
      `| ${m.model}${m.zimageFrom ? ` (zimage: ${m.zimageFrom})` : ''} | ${fmt(m.zimage)} | ${fmt(m.naive4)} | ${fmt(m.naive16)} | ${z?.evenPaceBound ?? '—'} | ${mark(g.efficiency95)} | ${mark(g.throttles1Percent)} | ${mark(g.fewerThrottlesThanNaive)} | ${mark(g.efficiencyNotBelowNaive)} | ${other.join('; ') || '—'} |`,
    );
  }
  lines.push('', '| model | client | seconds | jobs done | capacity | requests | throttled (by code) | peak req/s (accepted) | worker CPU ms/job | emulator process loop delay p99 / max ms |', '|---|---|---|---|---|---|---|---|---|---|');
  for (const m of models) {
    for (const r of [m.zimage, m.naive4, m.naive16]) {
      if ('error' in r) continue;
      const codes = Object.entries(r.throttledByCode).map(([code, n]) => `${code} ${n}`).join(', ');
      lines.push(
        `| ${m.model} | ${r.client} | ${r.seconds}${r.timedOut ? ' (limit)' : ''} | ${r.completed}/${r.jobs} | ${r.capacity} | ${r.requests} | ${r.throttled}${codes ? ` (${codes})` : ''} | ${r.peakRequestsPerSecond} (${r.peakAcceptedPerSecond}) | ${r.workerCpuMsPerJob ?? '—'} | ${r.emulatorLoopDelay ? `${r.emulatorLoopDelay.p99Ms} / ${r.emulatorLoopDelay.maxMs}${r.emulatorLoopDelay.p99Ms > BUSY_LOOP_P99_MS ? ' ⚠' : ''}` : '—'} |`,
      );
    }
  }
  const runs = models.flatMap((m) => [m.zimage, m.naive4, m.naive16]).filter((r): r is LimiterRun => !('error' in r));
  if (runs.some((r) => (r.emulatorLoopDelay?.p99Ms ?? 0) > BUSY_LOOP_P99_MS)) {
    lines.push('', `⚠ event-loop delay p99 over ${BUSY_LOOP_P99_MS} ms in the process that hosted the run's emulator (and client, for naive runs): the machine was busy, and that run's figures are pessimistic (answers and arrivals late).`);
  }
  const drift = models.find((m) => m.model === 'drift');
  if (drift && !('error' in drift.zimage) && drift.zimage.drift) {
    const d = drift.zimage.drift;
    lines.push('', `Drift (zimage): accepted ${d.acceptedRpmByStep.high} / ${d.acceptedRpmByStep.low} / ${d.acceptedRpmByStep.restored} per minute in the three steps; sent ${d.sentRpmBeforeDrop}/min in the 3 s before the drop; drop lag ${d.dropLagSeconds === null ? 'none (never settled in the low step)' : `${d.dropLagSeconds} s`}${d.sentRpmBeforeDrop <= 1.05 * plan.drift.lowRpm ? ' (trivial: already under the low quota)' : ''}, recovery lag ${d.recoveryLagSeconds === null ? `none within the ${d.observedAfterRestoreSeconds} s observed` : `${d.recoveryLagSeconds} s`} (3-s trailing averages: an instant follower scores ~3 s).`);
  }
  lines.push('');
  return lines;
}
