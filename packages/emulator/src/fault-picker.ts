import type { FaultKind, FaultStep } from './fault-catalogue.js';
import { FAULT_KINDS, isFaultKind } from './fault-catalogue.js';
import type { Prng } from './prng.js';

/**
 * Decides the fault, if any, for each request that reached the fault stage (after auth,
 * validation, quota and trigger words, so rejected requests never consume a scripted step).
 * Scripted steps come first, in order; then one uniform draw is compared with the cumulative
 * rates in catalogue order (if the rates sum above 1, the later kinds get less than asked).
 */
export class FaultPicker {
  readonly #script: FaultStep[] = [];

  constructor(
    private readonly rng: Prng,
    private readonly rates: () => Partial<Record<FaultKind, number>>,
  ) {}

  enqueue(steps: readonly FaultStep[]): void {
    for (const step of steps) {
      if (step !== 'none' && !isFaultKind(step)) throw new TypeError(`Unknown fault kind '${String(step)}'`);
    }
    this.#script.push(...steps);
  }

  get pending(): number {
    return this.#script.length;
  }

  clear(): void {
    this.#script.length = 0;
  }

  next(): FaultKind | undefined {
    const step = this.#script.shift();
    if (step !== undefined) return step === 'none' ? undefined : step;
    const rates = this.rates();
    // Skip the draw when no rate is set, so configuring faults later does not shift the
    // sequence of draws used for latency and seeds before that point.
    if (!FAULT_KINDS.some((kind) => (rates[kind] ?? 0) > 0)) return undefined;
    const draw = this.rng.next();
    let cumulative = 0;
    for (const kind of FAULT_KINDS) {
      cumulative += rates[kind] ?? 0;
      if (draw < cumulative) return kind;
    }
    return undefined;
  }
}
