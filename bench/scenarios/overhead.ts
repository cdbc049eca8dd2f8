/**
 * Scenario 2 — pipeline cost. With an unlimited, instant upstream and 512×512 images stored to a
 * folder, images a second through zimage's whole pipeline (validate → cancel check → governor →
 * generate → checkpoint → download → PNG check → store → event) beside a bare BullMQ worker
 * written as a user would (bench/bare-worker.ts: POST, GET, sha256, write the file, XADD), on the
 * same Redis server and the same emulator instance, two worker processes × the same concurrency
 * each side. Also CPU per image of each side's workers, of the bench process (the emulator) and
 * of Redis, and zimage's worker memory, sampled during the run, to show it does not grow with the
 * number of jobs.
 *
 * Order: an unmeasured warm-up batch on each side (JIT, heap sizing, connection pools), then pairs
 * of adjacent segments of ~2,000 jobs a side (at least two pairs), the order flipped every pair —
 * bare→zimage, zimage→bare, … — so a machine that speeds up or slows down during the run (other
 * processes on a shared box) moves both sides alike. `ratio` is over all measured jobs of each
 * side; `pairRatios` shows the spread pair by pair. Each segment's jobs are enqueued while its
 * queue is paused and timed from the resume to the last job's event, so enqueueing (zimage's
 * producer does more work than `addBulk`) is in neither side's window. Both sides' workers stay up
 * throughout; the idle side's CPU during the other's segments is reported too
 * (`otherSideIdleCpuMsPerSecond`). CPU is read from /proc/<pid>/stat (workers), INFO (Redis) and
 * process.cpuUsage() (the bench process, which runs the emulator).
 */
import { Queue } from 'bullmq';
import { Redis } from 'ioredis';
import { execFileSync } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { mkdirSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Producer } from '@zimage/producer';
import { startFleet } from '../fleet.js';
import { API_KEY, memoryOf, round, spawnNode, waitFor, waitForBatch, type WorkerProcess } from '../support.js';

/**
 * Jobs each worker process runs at once, on both sides. Ours wait on I/O (two HTTP calls, a file
 * fsync, Redis) and at 16 left the CPU a third idle; 64 is what an operator would set for an
 * instant upstream.
 */
const CONCURRENCY = 64;
const WORKERS = 2;
const SIZE = '512*512';
/**
 * About this many jobs a side per pair of adjacent segments, at least two pairs (so the order is
 * counterbalanced). Shorter segments spend more of their time filling and draining 128 slots,
 * which costs the side with the longer job more.
 */
const SEGMENT_JOBS = 2000;

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = Math.floor(sorted.length / 2);
  return sorted.length % 2 ? (sorted[mid] as number) : ((sorted[mid - 1] as number) + (sorted[mid] as number)) / 2;
}

interface MemorySample {
  /** Share of the batch's jobs done when the sample was taken. */
  done: number;
  rssMb: number;
  peakMb: number;
}

/** `done`: the share of all of zimage's measured jobs done, `doneBefore` of them in earlier segments. */
async function sampleMemory(producer: Producer, batchId: string, workers: WorkerProcess[], samples: MemorySample[][], doneBefore: number, total: number): Promise<void> {
  const batch = await producer.getBatch(batchId);
  const done = (doneBefore + (batch ? batch.total - batch.pending : 0)) / Math.max(1, total);
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

let clockTicks: number | undefined;

/** User + system CPU a process has used so far, ms (Linux /proc; all its threads). */
function cpuMsOf(pid: number | undefined): number {
  if (!pid) return 0;
  clockTicks ??= Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim()) || 100;
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // Fields after "pid (comm) ": state is field 3, utime 14, stime 15.
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return ((Number(fields[11]) + Number(fields[12])) * 1000) / clockTicks;
  } catch {
    return 0;
  }
}

/** Redis' own CPU (ms) and the commands it has processed so far. */
async function redisUsage(redis: Redis): Promise<{ cpuMs: number; commands: number }> {
  const text = `${await redis.info('cpu')}\n${await redis.info('stats')}`;
  const field = (name: string) => Number(new RegExp(`^${name}:([\\d.]+)`, 'm').exec(text)?.[1] ?? 0);
  return { cpuMs: (field('used_cpu_user') + field('used_cpu_sys')) * 1000, commands: field('total_commands_processed') };
}

interface Usage {
  at: number;
  /** process.hrtime (CLOCK_MONOTONIC, as the children's --cpu-prof timestamps), µs. */
  monotonicUs: number;
  workersMs: number;
  otherMs: number;
  benchMs: number;
  redisMs: number;
  redisCommands: number;
}

async function usage(active: WorkerProcess[], idle: WorkerProcess[], redis: Redis): Promise<Usage> {
  const bench = process.cpuUsage();
  const r = await redisUsage(redis);
  return {
    at: performance.now(),
    monotonicUs: Number(process.hrtime.bigint() / 1000n),
    workersMs: active.reduce((sum, w) => sum + cpuMsOf(w.child.pid), 0),
    otherMs: idle.reduce((sum, w) => sum + cpuMsOf(w.child.pid), 0),
    benchMs: (bench.user + bench.system) / 1000,
    redisMs: r.cpuMs,
    redisCommands: r.commands,
  };
}

/** One measured segment: its images and what each process spent on them. */
interface Segment {
  images: number;
  /** The window in CLOCK_MONOTONIC µs, to cut the workers' CPU profiles to it. */
  window: [number, number];
  ms: number;
  workersMs: number;
  otherMs: number;
  benchMs: number;
  redisMs: number;
  redisCommands: number;
}

function segmentOf(images: number, before: Usage, after: Usage): Segment {
  return {
    images,
    window: [before.monotonicUs, after.monotonicUs],
    ms: after.at - before.at,
    workersMs: after.workersMs - before.workersMs,
    otherMs: after.otherMs - before.otherMs,
    benchMs: after.benchMs - before.benchMs,
    redisMs: after.redisMs - before.redisMs,
    redisCommands: after.redisCommands - before.redisCommands,
  };
}

function sum(segments: Segment[]): Segment {
  const total: Segment = { images: 0, window: [segments[0]?.window[0] ?? 0, segments.at(-1)?.window[1] ?? 0], ms: 0, workersMs: 0, otherMs: 0, benchMs: 0, redisMs: 0, redisCommands: 0 };
  for (const s of segments) for (const k of ['images', 'ms', 'workersMs', 'otherMs', 'benchMs', 'redisMs', 'redisCommands'] as const) total[k] += s[k];
  return total;
}

function report(s: Segment) {
  const perImage = (ms: number) => round(ms / Math.max(1, s.images), 2);
  return {
    images: s.images,
    seconds: round(s.ms / 1000, 2),
    imagesPerSecond: round(s.images / (s.ms / 1000), 1),
    /** User + system CPU of this side's worker processes, over the segment, per image. */
    cpuMsPerImage: perImage(s.workersMs),
    /** The bench process: the emulator serving both HTTP calls, plus the bench's polling. */
    benchProcessCpuMsPerImage: perImage(s.benchMs),
    redisCpuMsPerImage: perImage(s.redisMs),
    /** Workers + bench process + Redis. */
    allCpuMsPerImage: perImage(s.workersMs + s.benchMs + s.redisMs),
    /** Commands Redis processed per image (the bench's few polling commands included). */
    redisCommandsPerImage: round(s.redisCommands / Math.max(1, s.images), 1),
    /** Cores this side's workers kept busy (of the machine's total). */
    workerCores: round(s.workersMs / s.ms, 2),
    /** Cores busy in all: workers, bench process, Redis. */
    allCores: round((s.workersMs + s.benchMs + s.redisMs) / s.ms, 2),
    /** The other side's idle workers, meanwhile (timers, blocking reads). */
    otherSideIdleCpuMsPerSecond: round(s.otherMs / (s.ms / 1000), 1),
  };
}

export async function runOverheadScenario(options: { redisUrl: string; jobs: number }) {
  const fleet = await startFleet({
    redisUrl: options.redisUrl,
    emulator: { latency: { minMs: 0, maxMs: 0, extendExtraMinMs: 0, extendExtraMaxMs: 0 }, quota: { rpm: Infinity, rps: Infinity }, images: 'template' },
    workers: WORKERS,
    rpm: 100_000,
    concurrency: CONCURRENCY,
  });
  const { producer, workers: zimageWorkers, emulator } = fleet;

  const name = `bare-${randomUUID().slice(0, 6)}`;
  const stream = `${name}:events`;
  const bareDir = mkdtempSync(join(tmpdir(), 'zimage-bench-bare-'));
  const redis = new Redis(options.redisUrl, { maxRetriesPerRequest: null });
  const bareQueue = new Queue(name, { connection: redis });
  const bareWorkers = Array.from({ length: WORKERS }, () =>
    spawnNode(['bench/bare-worker.ts'], {
      REDIS_URL: options.redisUrl,
      QUEUE: name,
      CONCURRENCY: String(CONCURRENCY),
      BASE_URL: emulator.url,
      API_KEY,
      OUTPUT_DIR: bareDir,
      STREAM: stream,
      ...(process.env['BARE_HTTP'] ? { BARE_HTTP: process.env['BARE_HTTP'] } : {}),
      ...(process.env['BARE_FSYNC'] ? { BARE_FSYNC: process.env['BARE_FSYNC'] } : {}),
    }),
  );
  const samples: MemorySample[][] = [];

  async function runZimage(count: number, label: string, memory?: { doneBefore: number; total: number }): Promise<Segment> {
    await producer.queue.pause();
    const { batchId } = await producer.enqueueMany(Array.from({ length: count }, (_, i) => ({ prompt: `Overhead ${label} ${i}`, size: SIZE })));
    const sample = memory ? () => sampleMemory(producer, batchId, zimageWorkers, samples, memory.doneBefore, memory.total) : undefined;
    const before = await usage(zimageWorkers, bareWorkers, redis);
    await producer.queue.resume();
    const sampler = sample ? setInterval(() => void sample().catch(() => {}), 250) : undefined;
    try {
      await waitForBatch(producer, batchId, 30 * 60_000);
    } finally {
      clearInterval(sampler);
    }
    const after = await usage(zimageWorkers, bareWorkers, redis);
    await sample?.();
    const batch = await producer.getBatch(batchId);
    if (batch?.succeeded !== count) throw new Error(`overhead: zimage batch ${label} ended with ${batch?.succeeded} of ${count} succeeded (failed ${batch?.failed})`);
    return segmentOf(count, before, after);
  }

  async function runBare(count: number, label: string): Promise<Segment> {
    await bareQueue.pause();
    for (let i = 0; i < count; i += 1000) {
      await bareQueue.addBulk(
        Array.from({ length: Math.min(1000, count - i) }, (_, j) => ({ name: 'generate', data: { prompt: `Overhead ${label} ${i + j}`, size: SIZE }, opts: { attempts: 3, removeOnComplete: true } })),
      );
    }
    const before = await usage(bareWorkers, zimageWorkers, redis);
    await bareQueue.resume();
    await waitFor(`bare jobs (${label})`, async () => (await redis.xlen(stream)) >= count, 30 * 60_000, 50);
    const after = await usage(bareWorkers, zimageWorkers, redis);
    const failed = await bareQueue.getFailedCount();
    if (failed > 0) throw new Error(`overhead: ${failed} bare jobs failed`);
    // Outside the window: an empty stream and folder for the next segment.
    await redis.del(stream);
    rmSync(bareDir, { recursive: true, force: true });
    mkdirSync(bareDir, { recursive: true });
    return segmentOf(count, before, after);
  }

  try {
    await waitFor('bare workers', async () => (await bareQueue.getWorkers()).length >= WORKERS, 30_000);
    // 500 was not enough: both sides' first measured segment still cost ~1.5× the CPU per image
    // of the later ones (JIT tiers, heap growth).
    const warmUp = Math.min(2000, Math.max(200, Math.round(options.jobs / 6)));
    await runBare(warmUp, 'warm-up');
    await runZimage(warmUp, 'warm-up');

    // Pairs of adjacent segments, the order flipped every pair: bare zimage | zimage bare | …
    const pairs = Math.max(2, Math.round(options.jobs / SEGMENT_JOBS));
    const sizes = Array.from({ length: pairs }, (_, k) => Math.floor((options.jobs * (k + 1)) / pairs) - Math.floor((options.jobs * k) / pairs));
    const zimageRuns: Segment[] = [];
    const bareRuns: Segment[] = [];
    for (const [k, size] of sizes.entries()) {
      const doneBefore = zimageRuns.reduce((n, r) => n + r.images, 0);
      const zimageRun = () => runZimage(size, `pair ${k}`, { doneBefore, total: options.jobs });
      if (k % 2 === 0) {
        bareRuns.push(await runBare(size, `pair ${k}`));
        zimageRuns.push(await zimageRun());
      } else {
        zimageRuns.push(await zimageRun());
        bareRuns.push(await runBare(size, `pair ${k}`));
      }
    }

    const zimageReport = report(sum(zimageRuns));
    const bareReport = report(sum(bareRuns));
    const perSecond = (s: Segment) => s.images / (s.ms / 1000);
    const pairRatios = zimageRuns.map((z, k) => round(perSecond(z) / perSecond(bareRuns[k] as Segment)));
    const runs = (list: Segment[]) => list.map((s) => `${round(perSecond(s), 0)}/s ${round(s.workersMs / s.images, 2)} ms`);
    return {
      jobs: options.jobs,
      order: `warm-up ${warmUp} jobs each side (unmeasured), then ${pairs} pair(s) of ${sizes[0]} jobs a side, alternating bare→zimage, zimage→bare; each queue filled while paused, timed from resume to the last event`,
      workersPerSide: WORKERS,
      concurrencyPerWorker: CONCURRENCY,
      bareVariant: { http: process.env['BARE_HTTP'] === 'undici' ? 'undici request' : 'fetch', write: process.env['BARE_FSYNC'] === '1' ? 'temp + fsync + rename + folder fsync' : 'writeFile' },
      zimage: { ...zimageReport, peakRssMb: zimageWorkers.map((w) => memoryOf(w.child.pid)?.peakMb ?? 0), runs: runs(zimageRuns) },
      bare: { ...bareReport, peakRssMb: bareWorkers.map((w) => memoryOf(w.child.pid)?.peakMb ?? 0), runs: runs(bareRuns) },
      /** zimage / bare images a second, over all the measured jobs of each side. */
      ratio: round(zimageReport.imagesPerSecond / bareReport.imagesPerSecond),
      goal: 0.8,
      /** The same ratio per adjacent pair: its spread is the machine's drift, not either side's. */
      pairRatios: { median: round(median(pairRatios)), min: Math.min(...pairRatios), max: Math.max(...pairRatios), all: pairRatios },
      cpuPerImageRatio: round(zimageReport.cpuMsPerImage / bareReport.cpuMsPerImage, 2),
      workerMemory: samples.map(memoryReport),
      // With BENCH_NODE_ARGS=--cpu-prof: each side's measured windows, and the worker pids, to cut the profiles to them.
      ...(process.env['BENCH_NODE_ARGS']?.includes('--cpu-prof')
        ? { profileWindows: { zimage: { pids: zimageWorkers.map((w) => w.child.pid), windows: zimageRuns.map((r) => r.window) }, bare: { pids: bareWorkers.map((w) => w.child.pid), windows: bareRuns.map((r) => r.window) } } }
        : {}),
    };
  } finally {
    await Promise.all(bareWorkers.map((w) => w.stop()));
    await bareQueue.obliterate({ force: true }).catch(() => {});
    await bareQueue.close();
    redis.disconnect();
    rmSync(bareDir, { recursive: true, force: true });
    await fleet.close();
  }
}
