/**
 * The quota scenario's emulator and its figures, in a module of its own (no Redis, no BullMQ) so
 * that light child processes (bench/naive-child.ts) can load it quickly.
 */
import type { EmulatorOptionsInput } from '@zimage/emulator';
import { round } from '../support.js';

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
  /** Only when a zimage run hit its time limit (a stalled governor), which no run should. */
  timedOut?: true;
}

export function quotaEmulator(quotaPerMinute: number): EmulatorOptionsInput {
  const rps = quotaPerMinute / 60;
  return {
    latency: { minMs: 300, maxMs: 800 },
    // Stamped template PNGs: encoding each image took the emulator ~5 ms of the bench process's
    // event loop, which delayed when it saw the next arrivals and bunched them in its 1-s window.
    images: 'template',
    // Ramp guard on: from idle, more than 60% of the per-second quota at once is "too quickly".
    quota: { model: 'per-second', rpm: quotaPerMinute, rps, burst: { enabled: true, floorPerSecond: Math.max(1, Math.floor(rps * 0.6)), factor: 2 } },
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
