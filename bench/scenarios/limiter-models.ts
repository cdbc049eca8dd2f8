/**
 * The limiter models of scenario 5 (bench/scenarios/limiters.ts): each model's emulator options
 * and jobs at the plan's scale, and the figures of a run read from its emulator. No Redis or
 * BullMQ here, so the naive baselines' child processes (bench/naive-child.ts) load it quickly.
 */
import type { Emulator, EmulatorOptionsInput, LimiterModel } from '@zimage/emulator';
import { quotaEmulator } from './quota-emulator.js';
import { round } from '../support.js';

export const LIMITER_RATE_PER_MINUTE = 600;
export const ALL_LIMITER_MODELS: readonly LimiterModel[] = ['per-second', 'fixed-window', 'sliding-log', 'token-bucket', 'concurrency', 'drift'];
export const LATENCY = { minMs: 300, maxMs: 800 };
const MEAN_LATENCY_MS = (LATENCY.minMs + LATENCY.maxMs) / 2;
export const LIMITER_WORKERS = 4;

export interface LimiterPlan {
  mode: 'full' | 'quick';
  /** fixed-window and sliding-log window (ms), and how many of them the jobs fill at the quota. */
  windowMs: number;
  windows: number;
  bucketSize: number;
  maxInFlight: number;
  perSecondJobs: number;
  tokenBucketJobs: number;
  concurrencyJobs: number;
  /** drift: `highMs` at 600/min, `lowMs` at `lowRpm`, then 600/min for `afterMs` worth of jobs. */
  drift: { highMs: number; lowMs: number; lowRpm: number; afterMs: number };
  /**
   * zimage runs at once: 1 (full) keeps each alone. Quick runs two at a time to fit its budget (the
   * governor's start-up costs every run ~10 s however short): on 2 CPUs, two fleets use ~1 core.
   */
  fleetsAtOnce: number;
  /** A naive run stops after its model's even-pace time + 5 s, or this, whichever is shorter. */
  naiveLimitSeconds: number;
}

export const LIMITER_PLANS: Record<'full' | 'quick', LimiterPlan> = {
  full: {
    mode: 'full',
    windowMs: 15_000,
    windows: 5,
    bucketSize: 20,
    maxInFlight: 4,
    perSecondJobs: 1200,
    tokenBucketJobs: 500,
    concurrencyJobs: 400,
    drift: { highMs: 25_000, lowMs: 25_000, lowRpm: 360, afterMs: 60_000 },
    fleetsAtOnce: 1,
    naiveLimitSeconds: 75,
  },
  quick: {
    mode: 'quick',
    windowMs: 3_000,
    windows: 5,
    bucketSize: 20,
    maxInFlight: 4,
    perSecondJobs: 150,
    tokenBucketJobs: 150,
    concurrencyJobs: 100,
    drift: { highMs: 8_000, lowMs: 6_000, lowRpm: 360, afterMs: 10_000 },
    fleetsAtOnce: 2,
    naiveLimitSeconds: 15,
  },
};

/** One model's emulator and jobs. */
export interface ModelSpec {
  model: LimiterModel;
  emulator: EmulatorOptionsInput;
  jobs: number;
  /** How long a client sending evenly at the model's sustainable rate needs to send every job (s). */
  evenSeconds: number;
  /** What the model does, for the tables. */
  describe: string;
  /** drift only: the epoch-relative step times (ms after the limiter's first request). */
  drift?: { dropAtMs: number; restoreAtMs: number; highRpm: number; lowRpm: number };
}

export function modelSpec(model: LimiterModel, plan: LimiterPlan): ModelSpec {
  const rpm = LIMITER_RATE_PER_MINUTE;
  const perSecond = rpm / 60;
  const base = (quota: Record<string, unknown>): EmulatorOptionsInput => ({
    latency: LATENCY,
    images: 'template',
    quota: { model, rpm, rps: perSecond, burst: { enabled: false }, ...quota },
  });
  switch (model) {
    case 'per-second': {
      const jobs = plan.perSecondJobs;
      return { model, emulator: quotaEmulator(rpm), jobs, evenSeconds: jobs / perSecond, describe: `trailing 1 s ≤ ${perSecond}, 60 s ≤ ${rpm}, ramp guard on (the quota scenario's emulator)` };
    }
    case 'fixed-window':
    case 'sliding-log': {
      const limit = Math.max(1, Math.floor((rpm * plan.windowMs) / 60_000));
      const how = model === 'fixed-window' ? 'per window aligned to the first request' : 'in any trailing window';
      return {
        model,
        emulator: base({ windowMs: plan.windowMs }),
        jobs: plan.windows * limit,
        evenSeconds: (plan.windows * plan.windowMs) / 1000,
        describe: `≤ ${limit} ${how} of ${plan.windowMs / 1000} s; ${plan.windows} windows of jobs`,
      };
    }
    case 'token-bucket': {
      const jobs = plan.tokenBucketJobs;
      return { model, emulator: base({ bucketSize: plan.bucketSize }), jobs, evenSeconds: jobs / perSecond, describe: `bucket ${plan.bucketSize}, refill ${perSecond}/s, starts full` };
    }
    case 'concurrency': {
      const sustainable = Math.min(rpm, (plan.maxInFlight * 60_000) / MEAN_LATENCY_MS);
      const jobs = plan.concurrencyJobs;
      return {
        model,
        emulator: base({ maxInFlight: plan.maxInFlight }),
        jobs,
        evenSeconds: (jobs * 60) / sustainable,
        describe: `≤ ${plan.maxInFlight} in flight (${Math.round(sustainable)}/min at ${MEAN_LATENCY_MS} ms mean latency), and ≤ ${perSecond}/s, ${rpm}/min`,
      };
    }
    case 'drift': {
      const { highMs, lowMs, lowRpm, afterMs } = plan.drift;
      const jobs = Math.round((highMs * rpm + lowMs * lowRpm + afterMs * rpm) / 60_000);
      return {
        model,
        emulator: base({ drift: [{ atMs: 0, rpm }, { atMs: highMs, rpm: lowRpm }, { atMs: highMs + lowMs, rpm }] }),
        jobs,
        evenSeconds: (highMs + lowMs + afterMs) / 1000,
        describe: `${rpm}/min, ${lowRpm}/min from ${highMs / 1000} s, ${rpm}/min from ${(highMs + lowMs) / 1000} s (per second)`,
        drift: { dropAtMs: highMs, restoreAtMs: highMs + lowMs, highRpm: rpm, lowRpm },
      };
    }
    default: {
      const unknown: never = model;
      throw new Error(`bench: unknown limiter model ${String(unknown)}`);
    }
  }
}

export type LimiterClient = 'zimage' | 'naive4' | 'naive16';

export interface LimiterRun {
  client: LimiterClient;
  jobs: number;
  /** Images stored by the end of the measured interval. */
  completed: number;
  seconds: number;
  efficiency: number;
  throttleRatio: number;
  /** The model's true capacity over the measured interval (requests). */
  capacity: number;
  /** Requests the limiter saw in the interval (accepted + throttled). */
  requests: number;
  throttled: number;
  throttledByCode: Record<string, number>;
  /** Most requests / accepted requests in any 1 s window (emulator stats). */
  peakRequestsPerSecond: number;
  peakAcceptedPerSecond: number;
  /** The efficiency an even pacer at the sustainable rate would score with these jobs (no start-up, no bursts). */
  evenPaceBound: number;
  /** The run hit its time limit (always for a naive baseline that did not finish). */
  timedOut: boolean;
  /** zimage only: CPU of the four worker processes per job stored, ms. */
  workerCpuMsPerJob?: number;
  /** Event-loop delay of the process hosting the run's emulator (it stamps arrivals on it): the bench for zimage, the child for naive runs. */
  emulatorLoopDelay?: { p99Ms: number; maxMs: number };
  drift?: DriftFigures;
}

export interface DriftFigures {
  /** Seconds from the drop until the sent rate (3-s trailing average) stays ≤ 1.05 × the low quota; null: never. */
  dropLagSeconds: number | null;
  /** Seconds from the restore until the accepted rate (3-s trailing average) reaches ≥ 0.95 × the quota; null: not within the run. */
  recoveryLagSeconds: number | null;
  /** How long the run went on after the restore (s): the longest recovery it could show. */
  observedAfterRestoreSeconds: number;
  /** Mean accepted per minute in each step (the first from the limiter's start). */
  acceptedRpmByStep: { high: number; low: number; restored: number };
  /**
   * Sent per minute in the 3 s before the drop: at or under 1.05 × the low quota, the drop lag is
   * trivially short (the client had not reached the high quota) and says nothing.
   */
  sentRpmBeforeDrop: number;
  /** Per second from the limiter's start: [sent, accepted, quota per minute]. */
  timeline: [number, number, number][];
}

interface MeasuredInterval {
  jobs: number;
  completed: number;
  startedAt: number;
  endedAt: number;
  timedOut: boolean;
  workerCpuMs?: number;
}

/** The figures of one run, read from its emulator before it closes. */
export function measureLimiterRun(emulator: Emulator, client: LimiterClient, spec: ModelSpec, run: MeasuredInterval, loop?: { p99Ms: number; maxMs: number }): LimiterRun {
  const limiter = emulator.limiter;
  if (limiter.model !== spec.model) throw new Error(`bench: the emulator runs '${limiter.model}', expected '${spec.model}'`);
  const capacity = limiter.capacity(run.startedAt, run.endedAt);
  const counts = limiter.counts(run.startedAt, run.endedAt);
  const stats = emulator.stats();
  const requests = counts.accepted + counts.throttled;
  const firstRequest = limiter.startedAt ?? run.startedAt;
  const evenCapacity = limiter.capacity(firstRequest, firstRequest + spec.evenSeconds * 1000 + MEAN_LATENCY_MS);
  const result: LimiterRun = {
    client,
    jobs: run.jobs,
    completed: run.completed,
    seconds: round((run.endedAt - run.startedAt) / 1000, 1),
    efficiency: round(capacity > 0 ? run.completed / capacity : 0),
    throttleRatio: round(requests === 0 ? 0 : counts.throttled / requests, 4),
    capacity: Math.round(capacity),
    requests,
    throttled: counts.throttled,
    throttledByCode: stats.throttledByCode,
    peakRequestsPerSecond: stats.peakRequestsPerSecond,
    peakAcceptedPerSecond: stats.peakAcceptedPerSecond,
    evenPaceBound: round(evenCapacity > 0 ? Math.min(1, run.jobs / evenCapacity) : 0),
    timedOut: run.timedOut,
    ...(run.workerCpuMs !== undefined && run.completed > 0 ? { workerCpuMsPerJob: round(run.workerCpuMs / run.completed, 1) } : {}),
    ...(loop ? { emulatorLoopDelay: loop } : {}),
  };
  if (spec.drift && limiter.startedAt !== undefined) result.drift = driftFigures(emulator, spec, limiter.startedAt, run.endedAt);
  return result;
}

/**
 * The drift model's lags, from the limiter's per-second timeline. A 3-s trailing average at epoch
 * second s covers seconds s−2…s and is read at the end of s; a lag is that time minus the step's.
 * So a client that followed each step instantly scores about 3 s on both (the averaging).
 */
function driftFigures(emulator: Emulator, spec: ModelSpec, startedAt: number, endedAt: number): DriftFigures {
  const drift = spec.drift as NonNullable<ModelSpec['drift']>;
  const dropAt = startedAt + drift.dropAtMs;
  const restoreAt = startedAt + drift.restoreAtMs;
  const rows = emulator.limiter.timeline(startedAt, endedAt);
  const index = new Map(rows.map((r, i) => [r.second, i]));
  const avg = (second: number, pick: (r: (typeof rows)[number]) => number): number | undefined => {
    const i = index.get(second);
    if (i === undefined || i < 2) return undefined;
    return (pick(rows[i] as (typeof rows)[number]) + pick(rows[i - 1] as (typeof rows)[number]) + pick(rows[i - 2] as (typeof rows)[number])) / 3;
  };
  const sent = (r: (typeof rows)[number]) => r.accepted + r.throttled;
  const accepted = (r: (typeof rows)[number]) => r.accepted;
  const endOf = (second: number) => (second + 1) * 1000;
  const wholeSeconds = rows.filter((r) => endOf(r.second) <= endedAt).map((r) => r.second);

  // Drop: the first second from which every 3-s average until the restore stays under the bar.
  const lowBar = (1.05 * drift.lowRpm) / 60;
  const low = wholeSeconds.filter((s) => endOf(s) > dropAt && endOf(s) <= restoreAt);
  let settled: number | undefined;
  for (let i = low.length - 1; i >= 0; i--) {
    const a = avg(low[i] as number, sent);
    if (a === undefined || a > lowBar) break;
    settled = low[i];
  }
  // Recovery: the first second after the restore whose 3-s average of accepted reaches the bar.
  const highBar = (0.95 * drift.highRpm) / 60;
  const recovered = wholeSeconds.find((s) => endOf(s) > restoreAt && (avg(s, accepted) ?? 0) >= highBar);

  const meanRpm = (from: number, to: number) => {
    const inStep = rows.filter((r) => r.second * 1000 >= from && endOf(r.second) <= Math.min(to, endedAt));
    return inStep.length === 0 ? 0 : Math.round((inStep.reduce((n, r) => n + r.accepted, 0) * 60) / inStep.length);
  };
  return {
    dropLagSeconds: settled === undefined ? null : round((endOf(settled) - dropAt) / 1000, 1),
    recoveryLagSeconds: recovered === undefined ? null : round((endOf(recovered) - restoreAt) / 1000, 1),
    observedAfterRestoreSeconds: round(Math.max(0, endedAt - restoreAt) / 1000, 1),
    acceptedRpmByStep: { high: meanRpm(startedAt, dropAt), low: meanRpm(dropAt, restoreAt), restored: meanRpm(restoreAt, endedAt) },
    sentRpmBeforeDrop: Math.round((avg(Math.floor(dropAt / 1000) - 1, sent) ?? 0) * 60),
    timeline: rows.map((r) => [sent(r), r.accepted, r.quotaRpm]),
  };
}

/** A naive run stops after its model's even-pace time + 5 s, at most the plan's `naiveLimitSeconds`. */
export function naiveLimitSeconds(spec: ModelSpec, plan: LimiterPlan): number {
  return Math.min(spec.evenSeconds + 5, plan.naiveLimitSeconds);
}
