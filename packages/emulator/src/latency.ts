import type { LatencyOptions } from './emulator-options.js';
import type { Prng } from './prng.js';

/** Generation time: uniform in [minMs, maxMs], plus a uniform extra when `prompt_extend` is on. */
export function sampleLatencyMs(rng: Prng, latency: LatencyOptions, promptExtend: boolean): number {
  const uniform = (min: number, max: number): number => (max > min ? min + rng.next() * (max - min) : min);
  const base = uniform(latency.minMs, latency.maxMs);
  return promptExtend ? base + uniform(latency.extendExtraMinMs, latency.extendExtraMaxMs) : base;
}
