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
import { startFleet } from '../fleet.js';
import { memoryOf, round, spawnNode, waitFor, waitForBatch, type WorkerProcess } from '../support.js';

function sampleMemory(workers: WorkerProcess[], samples: { rssMb: number; peakMb: number }[][]) {
  workers.forEach((w, i) => {
    const m = memoryOf(w.child.pid);
    if (m) (samples[i] ??= []).push(m);
  });
}

export async function runOverheadScenario(options: { redisUrl: string; jobs: number }) {
  // zimage, full pipeline
  const fleet = await startFleet({
    redisUrl: options.redisUrl,
    emulator: { latency: { minMs: 0, maxMs: 0, extendExtraMinMs: 0, extendExtraMaxMs: 0 }, quota: { rpm: Infinity, rps: Infinity }, images: 'template' },
    workers: 2,
    rpm: 100_000,
  });
  const { producer, workers } = fleet;
  const samples: { rssMb: number; peakMb: number }[][] = [];
  let pipelinePerSecond = 0;
  try {
    const started = Date.now();
    const { batchId } = await producer.enqueueMany(Array.from({ length: options.jobs }, (_, i) => ({ prompt: `Overhead ${i}`, size: '512*512' })));
    const sampler = setInterval(() => sampleMemory(workers, samples), 500);
    await waitForBatch(producer, batchId, 30 * 60_000);
    clearInterval(sampler);
    sampleMemory(workers, samples);
    pipelinePerSecond = options.jobs / ((Date.now() - started) / 1000);
  } finally {
    await fleet.close();
  }

  // raw BullMQ, no-op jobs
  const name = `noop-${randomUUID().slice(0, 6)}`;
  const connection = new Redis(options.redisUrl, { maxRetriesPerRequest: null });
  const queue = new Queue(name, { connection });
  const noop = [0, 1].map(() => spawnNode(['bench/noop-worker.ts'], { REDIS_URL: options.redisUrl, QUEUE: name, CONCURRENCY: '16' }));
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

  const workerMemory = samples.map((series) => ({
    firstRssMb: series[0]?.rssMb ?? 0,
    lastRssMb: series.at(-1)?.rssMb ?? 0,
    peakRssMb: Math.max(...series.map((s) => s.peakMb)),
  }));
  return {
    jobs: options.jobs,
    pipelineImagesPerSecond: round(pipelinePerSecond, 1),
    rawBullmqJobsPerSecond: round(rawPerSecond, 1),
    ratio: round(pipelinePerSecond / rawPerSecond),
    workerMemory,
  };
}
