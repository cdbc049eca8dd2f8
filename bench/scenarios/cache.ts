/**
 * Scenario 6 — render cache re-run. A seeded catalogue CSV is ingested with `cache: true` and run
 * to completion (every image generated), then the same CSV is ingested again as a new batch (new
 * keys) and run: the re-run's upstream calls (expected 0), both runs' wall time side by side from
 * enqueue to `batch.completed`, its cost, and the Redis memory of the cache index (every entry's
 * `MEMORY USAGE`, per entry and in all). Two worker processes × 64 on an instant, unlimited
 * emulator, writing to a folder, as in the overhead scenario.
 */
import { ingestBatchFile } from '@zimage/producer';
import { Redis } from 'ioredis';
import { createWriteStream, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startFleet } from '../fleet.js';
import { round, waitForBatch } from '../support.js';

async function indexMemory(redis: Redis, prefix: string): Promise<{ entries: number; bytes: number }> {
  let cursor = '0';
  let entries = 0;
  let bytes = 0;
  do {
    const [next, keys] = await redis.scan(cursor, 'MATCH', `${prefix}:render-cache:*`, 'COUNT', 1000);
    cursor = next;
    entries += keys.length;
    const pipeline = redis.pipeline();
    for (const key of keys) pipeline.call('MEMORY', 'USAGE', key, 'SAMPLES', '0');
    for (const [, value] of (await pipeline.exec()) ?? []) bytes += Number(value ?? 0);
  } while (cursor !== '0');
  return { entries, bytes };
}

export async function runCacheScenario(options: { redisUrl: string; rows: number }) {
  const dir = mkdtempSync(join(tmpdir(), 'zimage-bench-cache-'));
  const file = join(dir, 'catalogue.csv');
  const out = createWriteStream(file);
  out.write('sku,title,seed\n');
  for (let i = 0; i < options.rows; i++) out.write(`SKU-${i},Product ${i},${1000 + i}\n`);
  await new Promise<void>((resolve) => out.end(resolve));

  const fleet = await startFleet({
    redisUrl: options.redisUrl,
    emulator: { latency: { minMs: 0, maxMs: 0, extendExtraMinMs: 0, extendExtraMaxMs: 0 }, quota: { rpm: Infinity, rps: Infinity }, images: 'template' },
    workers: 2,
    rpm: 100_000,
    concurrency: 64,
  });
  const redis = new Redis(options.redisUrl);
  const limitMs = Math.max(300_000, options.rows * 30);
  try {
    const run = async () => {
      const requestsBefore = fleet.emulator.stats().requests;
      const started = Date.now();
      const report = await ingestBatchFile(fleet.producer, {
        path: file,
        promptTemplate: 'Studio product photo of {title}, white background',
        defaults: { size: '512*512', cache: true },
      });
      await waitForBatch(fleet.producer, report.batchId, limitMs);
      const seconds = (Date.now() - started) / 1000;
      const batch = await fleet.producer.getBatch(report.batchId);
      return {
        seconds: round(seconds, 1),
        upstreamCalls: fleet.emulator.stats().requests - requestsBefore,
        succeeded: batch?.succeeded ?? 0,
        cached: batch?.cached ?? 0,
        costUsd: round(batch?.costUsd ?? 0, 3),
        savedUsd: round(batch?.savedUsd ?? 0, 3),
      };
    };
    const first = await run();
    const rerun = await run();
    const index = await indexMemory(redis, fleet.prefix);
    return {
      rows: options.rows,
      first,
      rerun,
      rerunToFirstTime: round(rerun.seconds / Math.max(0.001, first.seconds), 2),
      index: { entries: index.entries, bytes: index.bytes, bytesPerEntry: round(index.bytes / Math.max(1, index.entries), 0), megabytes: round(index.bytes / 2 ** 20, 1) },
      goal: { rerunUpstreamCalls: 0, met: rerun.upstreamCalls === 0 && rerun.cached === options.rows },
    };
  } finally {
    redis.disconnect();
    await fleet.close();
    rmSync(dir, { recursive: true, force: true });
  }
}
