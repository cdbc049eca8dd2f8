/**
 * Scenario 1 — quota efficiency. The emulator plays an account with a scaled-up quota (so the run
 * is short), a strict ramp guard and realistic latency; the same jobs go through zimage (four
 * worker processes), a p-limit script with exponential backoff on 429, and BullMQ's built-in
 * limiter with retries — side by side, in one run.
 *
 *   efficiency    = (jobs × 60 / quota per minute) / wall seconds   (1.0 = every slot used)
 *   throttleRatio = throttled upstream requests / all upstream requests
 */
import type { EmulatorOptionsInput } from '@zimage/emulator';
import { startFleet } from '../fleet.js';
import { runBullmqLimiter } from './bullmq-limiter.js';
import { runNaive } from './naive.js';
import { round, waitForBatch } from '../support.js';

export interface QuotaRun {
  jobs: number;
  /** Jobs finished (fewer than `jobs` when a baseline hit its time limit). */
  completed: number;
  seconds: number;
  efficiency: number;
  throttleRatio: number;
  requests: number;
  throttled: number;
  billed: number;
  peakRequestsPerSecond: number;
  throttledByCode: Record<string, number>;
}

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
}

export function quotaEmulator(quotaPerMinute: number): EmulatorOptionsInput {
  const rps = quotaPerMinute / 60;
  return {
    latency: { minMs: 300, maxMs: 800 },
    // Stamped template PNGs: encoding each image took the emulator ~5 ms of the bench process's
    // event loop, which delayed when it saw the next arrivals and bunched them in its 1-s window.
    images: 'template',
    // Ramp guard on: from idle, more than 60% of the per-second quota at once is "too quickly".
    quota: { rpm: quotaPerMinute, rps, burst: { enabled: true, floorPerSecond: Math.max(1, Math.floor(rps * 0.6)), factor: 2 } },
  };
}

export function summarise(
  jobs: number,
  completed: number,
  seconds: number,
  quotaPerMinute: number,
  stats: { requests: number; throttled: number; imagesGenerated: number; peakRequestsPerSecond: number; throttledByCode: Record<string, number> },
): QuotaRun {
  return {
    jobs,
    completed,
    seconds: round(seconds, 1),
    efficiency: round((completed * 60) / quotaPerMinute / seconds),
    throttleRatio: round(stats.requests === 0 ? 0 : stats.throttled / stats.requests, 4),
    requests: stats.requests,
    throttled: stats.throttled,
    billed: stats.imagesGenerated,
    peakRequestsPerSecond: stats.peakRequestsPerSecond,
    throttledByCode: stats.throttledByCode,
  };
}

/** zimage itself: four `zimage worker` processes with ZIMAGE_RPM = `configuredRpm`. */
export async function runZimage(options: QuotaOptions & { configuredRpm: number; workers?: number }): Promise<QuotaRun> {
  const fleet = await startFleet({ redisUrl: options.redisUrl, emulator: quotaEmulator(options.quotaPerMinute), workers: options.workers ?? 4, rpm: options.configuredRpm });
  try {
    const started = Date.now();
    const { batchId } = await fleet.producer.enqueueMany(Array.from({ length: options.jobs }, (_, i) => ({ prompt: `Catalogue item ${i}`, size: '512*512' })));
    await waitForBatch(fleet.producer, batchId, 30 * 60_000);
    const seconds = (Date.now() - started) / 1000;
    return summarise(options.jobs, options.jobs, seconds, options.quotaPerMinute, fleet.emulator.stats());
  } finally {
    await fleet.close();
  }
}

export async function runQuotaScenario(options: QuotaOptions, log: (line: string) => void) {
  const quota = options.quotaPerMinute;
  log(`  zimage, ZIMAGE_RPM=${quota} (right)…`);
  const zimage = await runZimage({ ...options, configuredRpm: quota });
  log(`  naive p-limit + backoff…`);
  const naive = await runNaive(options);
  log(`  BullMQ limiter { max: ${quota}, duration: 60000 }…`);
  const bullmqLimiter = await runBullmqLimiter(options);
  log(`  zimage, ZIMAGE_RPM=${quota * 1.5} (50% too high), ${options.misconfiguredJobs} jobs…`);
  const tooHigh = await runZimage({ ...options, jobs: options.misconfiguredJobs, configuredRpm: quota * 1.5 });
  log(`  zimage, ZIMAGE_RPM=${quota * 0.5} (50% too low), ${options.misconfiguredJobs} jobs…`);
  const tooLow = await runZimage({ ...options, jobs: options.misconfiguredJobs, configuredRpm: quota * 0.5 });
  return { zimage, baselines: { naive, bullmqLimiter }, misconfigured: { rpm50PercentTooHigh: tooHigh, rpm50PercentTooLow: tooLow } };
}
