/**
 * The operator in a chaos run: `zimage resume` when a scenario says the fault needed one (the
 * model came back), and a watch on the queue's pause state for everything else.
 *
 * The watch records every pause the fleet made (its `pause-reason` code). Once the fault is over
 * (`faultOver()`), a queue that stays paused for `patienceMs` is resumed as an operator would —
 * and counted in `unplannedResumes`: the fleet was meant to resume by itself (storage probe,
 * half-open upstream probe), so the row fails, but the batch still ends and every other invariant
 * can be read instead of a timeout.
 */
import type { Producer } from '@zimage/producer';
import { sleep, spawnNode } from '../bench/support.js';
import type { ChaosEnv } from './harness.js';

/** Runs the real `zimage resume` (enable every account, clear the pause reason, resume the queue). */
export async function resumeAsOperator(env: ChaosEnv, prefix: string): Promise<void> {
  const { child } = spawnNode(['packages/cli/src/main.ts', 'resume'], { REDIS_URL: env.redis.url, ZIMAGE_PREFIX: prefix });
  const code = child.exitCode ?? (await new Promise<number | null>((resolve) => child.once('exit', resolve)));
  if (code !== 0) throw new Error(`zimage resume exited with ${String(code)}`);
}

export interface PauseWatch {
  /** Pause codes in the order the fleet set them (`none` for a pause without a recorded reason). */
  readonly codes: string[];
  /** Total time the queue was seen paused, ms. */
  readonly pausedMs: number;
  readonly unplannedResumes: number;
  /** From now on a pause lasting `patienceMs` is ended by the operator. */
  faultOver(): void;
  stop(): Promise<void>;
}

export function watchPauses(env: ChaosEnv, producer: Producer, prefix: string, patienceMs: number): PauseWatch {
  const everyMs = 250;
  const watch = { codes: [] as string[], pausedMs: 0, unplannedResumes: 0 };
  let overAt: number | undefined;
  let stopped = false;
  /** When the current pause was first seen, and the last time it was seen. */
  let pausedSince: number | undefined;
  let seenAt = 0;
  let lastCode: string | undefined;
  const loop = (async () => {
    while (!stopped) {
      const state = await producer.pauseState().catch(() => undefined);
      const now = Date.now();
      if (state?.paused) {
        const code = state.reason?.code ?? 'none';
        if (pausedSince === undefined || code !== lastCode) watch.codes.push(code);
        lastCode = code;
        if (pausedSince !== undefined) watch.pausedMs += now - seenAt;
        pausedSince ??= now;
        seenAt = now;
        // Patience counts from the end of the fault: a pause during the fault is the fleet's job.
        if (overAt !== undefined && now - Math.max(pausedSince, overAt) >= patienceMs) {
          watch.unplannedResumes += 1;
          await resumeAsOperator(env, prefix).catch(() => {});
          pausedSince = undefined;
        }
      } else {
        pausedSince = undefined;
        lastCode = undefined;
      }
      await sleep(everyMs);
    }
  })();
  return {
    get codes() {
      return watch.codes;
    },
    get pausedMs() {
      return watch.pausedMs;
    },
    get unplannedResumes() {
      return watch.unplannedResumes;
    },
    faultOver() {
      overAt ??= Date.now();
    },
    async stop() {
      stopped = true;
      await loop;
    },
  };
}
