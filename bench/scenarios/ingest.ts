/**
 * Scenario 3 — ingest. `zimage batch` of a generated CSV (validated in a first pass, enqueued in
 * a second): rows a second, and Redis memory per queued job.
 *
 * Memory is `used_memory` of the private redis-server before and after, divided by the jobs
 * queued, and split by what holds it (`MEMORY USAGE`): the job's own hash (a sample of them), its
 * entry in the queue's `prioritized` sorted set, its id in the batch's index set, its share of
 * the queue's event stream (capped by BullMQ), and the rest (Redis's key table, allocator
 * rounding). CPU per row of this process (the producer) and of Redis is reported too: on a shared
 * machine it moves less than rows a second do.
 */
import { createProducer, ingestBatchFile } from '@zimage/producer';
import { batchJobsKey, GENERATE_QUEUE } from '@zimage/shared';
import { Redis } from 'ioredis';
import { randomUUID } from 'node:crypto';
import { createWriteStream, mkdtempSync, rmSync } from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { round } from '../support.js';

const INGEST_GOAL = { rowsPerSecond: 10_000, redisBytesPerJob: 1536 };
const SAMPLED_JOBS = 50;

async function usedMemory(redis: Redis): Promise<number> {
  const info = await redis.info('memory');
  return Number(/used_memory:(\d+)/.exec(info)?.[1] ?? 0);
}

/** Redis's own CPU so far, µs (user + system). */
async function redisCpu(redis: Redis): Promise<number> {
  const info = await redis.info('cpu');
  const seconds = (field: string) => Number(new RegExp(`${field}:([\\d.]+)`).exec(info)?.[1] ?? 0);
  return (seconds('used_cpu_user') + seconds('used_cpu_sys')) * 1e6;
}

async function memoryUsage(redis: Redis, key: string): Promise<number> {
  // SAMPLES 0: every element, not an estimate from five.
  return Number((await redis.call('MEMORY', 'USAGE', key, 'SAMPLES', '0')) ?? 0);
}

export async function runIngestScenario(options: { redisUrl: string; rows: number }) {
  const dir = mkdtempSync(join(tmpdir(), 'zimage-bench-csv-'));
  const file = join(dir, 'catalogue.csv');
  const out = createWriteStream(file);
  out.write('sku,title,color,material\n');
  for (let i = 0; i < options.rows; i++) out.write(`SKU-${i},Product ${i},${i % 3 ? 'navy blue' : '翠绿'},${i % 2 ? 'cotton' : 'linen'}\n`);
  await new Promise<void>((resolve) => out.end(resolve));

  const prefix = `bi${randomUUID().slice(0, 6)}`;
  const redis = new Redis(options.redisUrl);
  const producer = await createProducer({ redisUrl: options.redisUrl, prefix });
  try {
    const before = await usedMemory(redis);
    const load = loadavg()[0] ?? 0;
    const redisCpuBefore = await redisCpu(redis);
    const cpuBefore = process.cpuUsage();
    const started = Date.now();
    let enqueueStarted: number | undefined;
    const report = await ingestBatchFile(producer, {
      path: file,
      promptTemplate: 'Studio product photo of {title} in {color} {material}, white background',
      keyTemplate: 'catalogue/{sku}.png',
      defaults: { size: '1024*1024' },
      // The first enqueue report comes after the first chunk is in: close enough to pass 1's end.
      onProgress: (phase) => {
        if (phase === 'enqueue') enqueueStarted ??= Date.now();
      },
    });
    const seconds = (Date.now() - started) / 1000;
    const cpu = process.cpuUsage(cpuBefore);
    const redisCpuUs = (await redisCpu(redis)) - redisCpuBefore;
    const after = await usedMemory(redis);

    const jobs = report.enqueued;
    const perJob = (after - before) / jobs;
    const sample = (await redis.srandmember(batchJobsKey(prefix, report.batchId), SAMPLED_JOBS)) as string[];
    let hashBytes = 0;
    for (const jobId of sample) hashBytes += await memoryUsage(redis, `${prefix}:${GENERATE_QUEUE}:${jobId}`);
    const jobHash = hashBytes / Math.max(1, sample.length);
    const prioritizedEntry = (await memoryUsage(redis, `${prefix}:${GENERATE_QUEUE}:prioritized`)) / jobs;
    const batchIndexEntry = (await memoryUsage(redis, batchJobsKey(prefix, report.batchId))) / jobs;
    const eventStream = (await memoryUsage(redis, `${prefix}:${GENERATE_QUEUE}:events`)) / jobs;
    const rowsPerSecond = round(jobs / seconds, 0);
    const redisBytesPerJob = round(perJob, 0);
    return {
      rows: jobs,
      seconds: round(seconds, 1),
      validateSeconds: enqueueStarted === undefined ? undefined : round((enqueueStarted - started) / 1000, 1),
      rowsPerSecond,
      redisBytesPerJob,
      redisBytesPerJobByKey: {
        jobHash: round(jobHash, 0),
        prioritizedEntry: round(prioritizedEntry, 0),
        batchIndexEntry: round(batchIndexEntry, 0),
        eventStream: round(eventStream, 0),
        rest: round(perJob - jobHash - prioritizedEntry - batchIndexEntry - eventStream, 0),
      },
      cpuUsPerRow: { producer: round((cpu.user + cpu.system) / jobs, 1), redis: round(redisCpuUs / jobs, 1) },
      loadAverage: round(load, 1),
      goal: {
        ...INGEST_GOAL,
        rowsPerSecondMet: rowsPerSecond >= INGEST_GOAL.rowsPerSecond,
        redisBytesPerJobMet: redisBytesPerJob <= INGEST_GOAL.redisBytesPerJob,
      },
    };
  } finally {
    await producer.queue.obliterate({ force: true }).catch(() => {});
    const keys = await redis.keys(`${prefix}:*`);
    for (let i = 0; i < keys.length; i += 1000) await redis.del(...keys.slice(i, i + 1000));
    await producer.close();
    redis.disconnect();
    rmSync(dir, { recursive: true, force: true });
  }
}
