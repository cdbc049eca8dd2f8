/**
 * Scenario 2 — pipeline overhead. With an unlimited, instant upstream and 512×512 images stored to
 * a folder, how many images a second go through the whole pipeline (validate → governor →
 * generate → download → PNG check → store → event), beside raw BullMQ no-op jobs a second on the
 * same Redis in the same run, each with two worker processes. Also each worker's memory, sampled
 * during the run, to show it does not grow with the number of jobs.
 */
import { Queue } from 'bullmq';
import { Redis } from 'ioredis';
import { randomUUID } from 'node:crypto';
import type { Producer } from '@zimage/producer';
import { startFleet } from '../fleet.js';
import { memoryOf, round, spawnNode, waitFor, waitForBatch, type WorkerProcess } from '../support.js';

/**
 * Jobs each worker process runs at once, on both sides. Ours wait on I/O (two HTTP calls, a file
 * fsync, Redis) and at 16 left the CPU a third idle; 64 is what an operator would set for an
 * instant upstream. The no-op workers get the same (they are no faster with more).
 */
const CONCURRENCY = 64;

interface MemorySample {
  /** Share of the batch's jobs done when the sample was taken. */
  done: number;
  rssMb: number;
  peakMb: number;
}

async function sampleMemory(producer: Producer, batchId: string, workers: WorkerProcess[], samples: MemorySample[][]): Promise<void> {
  const batch = await producer.getBatch(batchId);
  const done = batch ? (batch.total - batch.pending) / Math.max(1, batch.total) : 0;
  workers.forEach((w, i) => {
    const m = memoryOf(w.child.pid);
    if (m) (samples[i] ??= []).push({ done, ...m });
  });
}

/**
 * RSS when a quarter, half and all of the jobs were done. The first quarter includes warm-up (JIT,
 * heap sizing, connection pools); what grows after it grows with the number of jobs.
 */
function memoryReport(series: MemorySample[]) {
  const at = (share: number) => series.find((s) => s.done >= share)?.rssMb ?? series.at(-1)?.rssMb ?? 0;
  const quarter = at(0.25);
  const last = series.at(-1)?.rssMb ?? 0;
  return {
    rssAtQuarterMb: quarter,
    rssAtHalfMb: at(0.5),
    rssAtEndMb: last,
    growthAfterQuarterMb: round(last - quarter, 1),
    peakRssMb: Math.max(...series.map((s) => s.peakMb)),
  };
}

export async function runOverheadScenario(options: { redisUrl: string; jobs: number }) {
  // zimage, full pipeline
  const fleet = await startFleet({
    redisUrl: options.redisUrl,
    emulator: { latency: { minMs: 0, maxMs: 0, extendExtraMinMs: 0, extendExtraMaxMs: 0 }, quota: { rpm: Infinity, rps: Infinity }, images: 'template' },
    workers: 2,
    rpm: 100_000,
    concurrency: CONCURRENCY,
  });
  const { producer, workers } = fleet;
  const samples: MemorySample[][] = [];
  let pipelinePerSecond = 0;
  let sampler: NodeJS.Timeout | undefined;
  try {
    const started = Date.now();
    const { batchId } = await producer.enqueueMany(Array.from({ length: options.jobs }, (_, i) => ({ prompt: `Overhead ${i}`, size: '512*512' })));
    sampler = setInterval(() => void sampleMemory(producer, batchId, workers, samples).catch(() => {}), 250);
    await waitForBatch(producer, batchId, 30 * 60_000);
    clearInterval(sampler);
    await sampleMemory(producer, batchId, workers, samples);
    pipelinePerSecond = options.jobs / ((Date.now() - started) / 1000);
  } finally {
    clearInterval(sampler);
    await fleet.close();
  }

  // raw BullMQ, no-op jobs
  const name = `noop-${randomUUID().slice(0, 6)}`;
  const connection = new Redis(options.redisUrl, { maxRetriesPerRequest: null });
  const queue = new Queue(name, { connection });
  const noop = [0, 1].map(() => spawnNode(['bench/noop-worker.ts'], { REDIS_URL: options.redisUrl, QUEUE: name, CONCURRENCY: String(CONCURRENCY) }));
  let rawPerSecond = 0;
  try {
    await waitFor('no-op workers', async () => (await queue.getWorkers()).length >= 2, 30_000);
    const started = Date.now();
    for (let i = 0; i < options.jobs; i += 1000) {
      await queue.addBulk(Array.from({ length: Math.min(1000, options.jobs - i) }, (_, j) => ({ name: 'noop', data: { i: i + j }, opts: { removeOnComplete: true } })));
    }
    await waitFor('no-op jobs', async () => {
      const counts = await queue.getJobCounts('waiting', 'active', 'prioritized', 'delayed');
      return Object.values(counts).every((n) => n === 0);
    }, 30 * 60_000, 20);
    rawPerSecond = options.jobs / ((Date.now() - started) / 1000);
  } finally {
    await Promise.all(noop.map((w) => w.stop()));
    await queue.obliterate({ force: true }).catch(() => {});
    await queue.close();
    connection.disconnect();
  }

  const workerMemory = samples.map(memoryReport);
  return {
    jobs: options.jobs,
    pipelineImagesPerSecond: round(pipelinePerSecond, 1),
    rawBullmqJobsPerSecond: round(rawPerSecond, 1),
    ratio: round(pipelinePerSecond / rawPerSecond),
    workerMemory,
  };
}
