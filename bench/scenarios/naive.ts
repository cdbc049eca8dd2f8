/**
 * Baseline (a): what a user would write without a queue — p-limit, the API called directly, and
 * exponential backoff with jitter on 429. Same emulator settings and jobs as zimage.
 */
import { createEmulator, type Emulator, type EmulatorOptionsInput } from '@zimage/emulator';
import pLimit from 'p-limit';
import type { QuotaOptions } from './quota.js';
import { quotaEmulator, summarise, type QuotaRun } from './quota-emulator.js';
import { API_KEY, sleep } from '../support.js';

const PATH = '/api/v1/services/aigc/multimodal-generation/generation';
/** No single call may hang a run: the emulator answers within ~1 s, a stuck socket is cut here. */
const CALL_TIMEOUT_MS = 30_000;

export interface NaiveOptions {
  /** A fresh emulator is created with these options for the run, and closed after it. */
  emulator: EmulatorOptionsInput;
  jobs: number;
  /** Calls at once (p-limit). */
  concurrency: number;
  /** The run stops after this long; what it finished by then is what it is measured on. */
  limitSeconds: number;
}

export interface NaiveRun {
  jobs: number;
  /** Jobs whose image was downloaded by `endedAt`. */
  completed: number;
  /** Jobs given up on an answer other than 200 or 429 (none expected). */
  failed: number;
  startedAt: number;
  /** The last download, or the time limit when it stopped the run. */
  endedAt: number;
  timedOut: boolean;
}

/**
 * Runs the p-limit script against a fresh emulator; `inspect` reads the emulator (stats, limiter)
 * before it is closed.
 */
export async function runNaiveScript<T>(options: NaiveOptions, inspect: (emulator: Emulator, run: NaiveRun) => T): Promise<T> {
  const emulator = await createEmulator(options.emulator);
  try {
    const limit = pLimit(options.concurrency);
    const startedAt = Date.now();
    const deadline = startedAt + options.limitSeconds * 1000;
    const doneAt: number[] = [];
    let failed = 0;
    await Promise.all(
      Array.from({ length: options.jobs }, (_, i) =>
        limit(async () => {
          for (let attempt = 0; Date.now() < deadline; attempt++) {
            let status = 0;
            let url: string | undefined;
            try {
              const response = await fetch(`${emulator.url}${PATH}`, {
                method: 'POST',
                headers: { authorization: `Bearer ${API_KEY}`, 'content-type': 'application/json' },
                body: JSON.stringify({ model: 'z-image-turbo', input: { messages: [{ role: 'user', content: [{ text: `Catalogue item ${i}` }] }] }, parameters: { size: '512*512' } }),
                signal: AbortSignal.timeout(CALL_TIMEOUT_MS),
              });
              status = response.status;
              const body = (await response.json()) as { output?: { choices: { message: { content: { image?: string }[] } }[] } };
              url = body.output?.choices[0]?.message.content.find((c) => c.image)?.image;
            } catch {
              status = 0; // a network error or timeout: retried like a 429
            }
            if (status === 429 || status === 0 || status >= 500) {
              await sleep(Math.min(30_000, 1000 * 2 ** attempt, Math.max(0, deadline - Date.now())) * (0.5 + Math.random() / 2));
              continue;
            }
            if (status !== 200 || !url) {
              failed += 1;
              return;
            }
            try {
              await (await fetch(url, { signal: AbortSignal.timeout(CALL_TIMEOUT_MS) })).arrayBuffer();
            } catch {
              failed += 1;
              return;
            }
            doneAt.push(Date.now());
            return;
          }
        }),
      ),
    );
    const timedOut = doneAt.length < options.jobs && Date.now() >= deadline;
    const endedAt = timedOut ? deadline : Math.min(deadline, Math.max(startedAt, ...doneAt));
    // A download that finished after the time limit is not counted: the measured interval ends there.
    const completed = doneAt.filter((t) => t <= endedAt).length;
    return inspect(emulator, { jobs: options.jobs, completed, failed, startedAt, endedAt, timedOut });
  } finally {
    await emulator.close();
  }
}

/** The quota scenario's baseline: the quota emulator, `concurrency` calls at once, its time limit. */
export async function runNaive(options: QuotaOptions, concurrency = 16): Promise<QuotaRun> {
  return runNaiveScript(
    { emulator: quotaEmulator(options.quotaPerMinute), jobs: options.jobs, concurrency, limitSeconds: options.baselineLimitSeconds },
    (emulator, run) => summarise(run.jobs, run.completed, (run.endedAt - run.startedAt) / 1000, options.quotaPerMinute, emulator.stats()),
  );
}
