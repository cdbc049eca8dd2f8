/**
 * Scenario 1 — quota efficiency. The emulator plays an account with a scaled-up quota (so the run
 * is short), a strict ramp guard and realistic latency; the same jobs go through zimage (four
 * worker processes), a p-limit script with exponential backoff on 429, and BullMQ's built-in
 * limiter with retries — side by side, in one run.
 *
 *   efficiency    = (jobs done × 60 / quota per minute) / wall seconds   (1.0 = every slot used)
 *   throttleRatio = throttled upstream requests / all upstream requests
 */
import type { Emulator } from '@zimage/emulator';
import { runBatch, startFleet, type FleetBatchRun } from '../fleet.js';
import { runBullmqLimiter } from './bullmq-limiter.js';
import { runNaive } from './naive.js';
import { quotaEmulator, summarise, type QuotaRun } from './quota-emulator.js';

export { quotaEmulator, summarise, type QuotaRun } from './quota-emulator.js';

export interface QuotaOptions {
  redisUrl: string;
  jobs: number;
  quotaPerMinute: number;
  /**
   * Baselines stop after this long (their 429 storms can take many times the ideal); their
   * efficiency is then measured over the jobs finished so far, the same formula as ours.
   */
  baselineLimitSeconds: number;
  /** Jobs for the two mis-configured runs. */
  misconfiguredJobs: number;
  /** BullMQ's limiter baseline stops after this long (default `baselineLimitSeconds`). */
  bullmqLimitSeconds?: number;
  /** Quick: the two baselines at the same time, and the two mis-configured runs at the same time. */
  runsInPairs?: boolean;
  /**
   * Called with the emulator of the `ZIMAGE_RPM`-right run before it closes — the limiters
   * scenario reads its per-second row from it instead of running the same thing twice.
   */
  inspectRight?: (emulator: Emulator, run: FleetBatchRun) => void;
}

/**
 * zimage itself: four `zimage worker` processes with ZIMAGE_RPM = `configuredRpm`, stopped after
 * twice the ideal time plus a minute at most (a stalled governor must not hang the bench).
 */
export async function runZimage(options: QuotaOptions & { configuredRpm: number; workers?: number; inspect?: (emulator: Emulator, run: FleetBatchRun) => void }): Promise<QuotaRun> {
  const fleet = await startFleet({
    redisUrl: options.redisUrl,
    emulator: quotaEmulator(options.quotaPerMinute),
    workers: options.workers ?? 4,
    rpm: options.configuredRpm,
    bundled: true,
    ...(options.runsInPairs ? { startupTimeoutMs: 120_000 } : {}),
  });
  try {
    const idealMs = (options.jobs * 60_000) / options.quotaPerMinute;
    const run = await runBatch(fleet, options.jobs, 2 * idealMs + 60_000);
    options.inspect?.(fleet.emulator, run);
    const result = summarise(options.jobs, run.completed, (run.endedAt - run.startedAt) / 1000, options.quotaPerMinute, fleet.emulator.stats());
    return run.timedOut ? { ...result, timedOut: true } : result;
  } finally {
    await fleet.close();
  }
}

export async function runQuotaScenario(options: QuotaOptions, log: (line: string) => void) {
  const quota = options.quotaPerMinute;
  log(`  zimage, ZIMAGE_RPM=${quota} (right)…`);
  const zimage = await runZimage({ ...options, configuredRpm: quota, ...(options.inspectRight ? { inspect: options.inspectRight } : {}) });
  const bullmqLimitSeconds = options.bullmqLimitSeconds ?? options.baselineLimitSeconds;
  const naiveRun = () => runNaive(options);
  const bullmqRun = () => runBullmqLimiter({ ...options, baselineLimitSeconds: bullmqLimitSeconds });
  let naive: QuotaRun;
  let bullmqLimiter: QuotaRun;
  if (options.runsInPairs) {
    // Quick: both in this process at once, each against its own emulator (BullMQ's first-second
    // storm shares the event loop with the p-limit script's start — fine for a smoke run).
    log(`  baselines at once: naive p-limit (16) + backoff, stopped after ${options.baselineLimitSeconds} s; BullMQ limiter { max: ${quota}, duration: 60000 }, stopped after ${bullmqLimitSeconds} s…`);
    [naive, bullmqLimiter] = await Promise.all([naiveRun(), bullmqRun()]);
  } else {
    log(`  naive p-limit (16) + backoff, stopped after ${options.baselineLimitSeconds} s…`);
    naive = await naiveRun();
    log(`  BullMQ limiter { max: ${quota}, duration: 60000 }, stopped after ${bullmqLimitSeconds} s…`);
    bullmqLimiter = await bullmqRun();
  }
  const tooHighRun = () => runZimage({ ...options, jobs: options.misconfiguredJobs, configuredRpm: quota * 1.5 });
  const tooLowRun = () => runZimage({ ...options, jobs: options.misconfiguredJobs, configuredRpm: quota * 0.5 });
  let tooHigh: QuotaRun;
  let tooLow: QuotaRun;
  if (options.runsInPairs) {
    // Quick: the two mis-configured fleets at once (each with its own emulator), to fit the budget.
    log(`  zimage, ZIMAGE_RPM=${quota * 1.5} (50% too high) and ${quota * 0.5} (50% too low) at once, ${options.misconfiguredJobs} jobs each…`);
    [tooHigh, tooLow] = await Promise.all([tooHighRun(), tooLowRun()]);
  } else {
    log(`  zimage, ZIMAGE_RPM=${quota * 1.5} (50% too high), ${options.misconfiguredJobs} jobs…`);
    tooHigh = await tooHighRun();
    log(`  zimage, ZIMAGE_RPM=${quota * 0.5} (50% too low), ${options.misconfiguredJobs} jobs…`);
    tooLow = await tooLowRun();
  }
  return { zimage, baselines: { naive, bullmqLimiter }, misconfigured: { rpm50PercentTooHigh: tooHigh, rpm50PercentTooLow: tooLow } };
}
