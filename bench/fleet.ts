/**
 * A zimage deployment for one benchmark run: the emulator (in this process), a producer and N
 * `zimage worker` child processes on a fresh key prefix, writing to a temp folder.
 */
import { createEmulator, type Emulator, type EmulatorOptionsInput } from '@zimage/emulator';
import { createProducer, type Producer } from '@zimage/producer';
import { randomUUID } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { API_KEY, bundledCli, cpuMsOf, sleep, spawnWorkers, waitFor, withTimeout, type WorkerProcess } from './support.js';

export interface Fleet {
  emulator: Emulator;
  producer: Producer;
  workers: WorkerProcess[];
  /** The fleet's Redis key prefix (ZIMAGE_PREFIX). */
  prefix: string;
  /** Stops the workers (SIGTERM, SIGKILL after 20 s), empties the queue, closes the rest. Idempotent; never throws. */
  close(): Promise<void>;
}

export interface FleetOptions {
  redisUrl: string;
  emulator: EmulatorOptionsInput;
  workers: number;
  rpm: number;
  concurrency?: number;
  /** How long the workers may take to register (default 60 s: a busy 2-CPU machine needs 30+; more when several fleets start at once). */
  startupTimeoutMs?: number;
  /** More environment for the workers (ZIMAGE_FAIR_SHARE, …). */
  env?: Record<string, string>;
  /** Workers from the CLI bundled once per run (`bundledCli`: same code, half the start-up CPU) instead of through tsx. */
  bundled?: boolean;
}

export async function startFleet(options: FleetOptions): Promise<Fleet> {
  const cli = options.bundled ? await bundledCli() : undefined;
  const emulator = await createEmulator(options.emulator);
  const prefix = `b${randomUUID().slice(0, 8)}`;
  const output = mkdtempSync(join(tmpdir(), 'zimage-bench-'));
  let producer: Producer;
  try {
    producer = await createProducer({ redisUrl: options.redisUrl, prefix });
  } catch (error) {
    await emulator.close();
    rmSync(output, { recursive: true, force: true });
    throw error;
  }
  const workers = spawnWorkers(options.workers, {
    REDIS_URL: options.redisUrl,
    ZIMAGE_PREFIX: prefix,
    DASHSCOPE_API_KEY: API_KEY,
    DASHSCOPE_BASE_URL: emulator.url,
    STORAGE_URL: `file:${output}`,
    ZIMAGE_RPM: String(options.rpm),
    ZIMAGE_CONCURRENCY: String(options.concurrency ?? 16),
    ...options.env,
  }, cli);
  let closing: Promise<void> | undefined;
  const close = () =>
    (closing ??= (async () => {
      // Workers first (each stop() escalates to SIGKILL), then the rest, each step bounded.
      await Promise.all(workers.map((w) => w.stop()));
      const step = (what: string, p: Promise<unknown>) => withTimeout(p, 15_000, what).catch(() => {});
      await step('obliterating the queue', producer.queue.obliterate({ force: true }));
      await step('closing the producer', producer.close());
      await step('closing the emulator', emulator.close());
      rmSync(output, { recursive: true, force: true });
    })());
  try {
    await waitFor('workers', async () => (await producer.queue.getWorkers()).length >= options.workers, options.startupTimeoutMs ?? 60_000);
  } catch (error) {
    await close();
    throw error;
  }
  return { emulator, producer, workers, prefix, close };
}

export interface FleetBatchRun {
  jobs: number;
  /** Jobs stored (the batch's succeeded count) by `endedAt`. */
  completed: number;
  failed: number;
  /** Epoch ms just before the jobs were enqueued, and when the batch was seen complete (or the time limit). */
  startedAt: number;
  endedAt: number;
  /** The batch did not complete within the time limit; `completed` counts what it stored by then. */
  timedOut: boolean;
  /** CPU the worker processes used during the run, ms (all of them together). */
  workerCpuMs: number;
}

/**
 * Enqueues `jobs` 512×512 jobs as one batch and waits until the batch completes, or until
 * `limitMs` has passed: a governor that stalls cannot hang the bench.
 */
export async function runBatch(fleet: Fleet, jobs: number, limitMs: number, prompt = 'Catalogue item'): Promise<FleetBatchRun> {
  const workerCpu = () => fleet.workers.reduce((sum, w) => sum + cpuMsOf(w.child.pid), 0);
  const cpuBefore = workerCpu();
  const startedAt = Date.now();
  const deadline = startedAt + limitMs;
  const { batchId } = await fleet.producer.enqueueMany(Array.from({ length: jobs }, (_, i) => ({ prompt: `${prompt} ${i}`, size: '512*512' })));
  for (;;) {
    const batch = await fleet.producer.getBatch(batchId);
    const now = Date.now();
    if (batch?.completedAt || now >= deadline) {
      return {
        jobs,
        completed: batch?.succeeded ?? 0,
        failed: batch?.failed ?? 0,
        startedAt,
        endedAt: batch?.completedAt ? now : Math.min(now, deadline),
        timedOut: !batch?.completedAt,
        workerCpuMs: Math.round(workerCpu() - cpuBefore),
      };
    }
    await sleep(50);
  }
}
