/**
 * Scenario 3 — ingest. `zimage batch` of a generated CSV (validated in a first pass, enqueued in
 * a second): rows a second, and Redis memory per queued job.
 */
import { createProducer, ingestBatchFile } from '@zimage/producer';
import { Redis } from 'ioredis';
import { randomUUID } from 'node:crypto';
import { createWriteStream, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { round } from '../support.js';

async function usedMemory(redis: Redis): Promise<number> {
  const info = await redis.info('memory');
  return Number(/used_memory:(\d+)/.exec(info)?.[1] ?? 0);
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
    const started = Date.now();
    const report = await ingestBatchFile(producer, {
      path: file,
      promptTemplate: 'Studio product photo of {title} in {color} {material}, white background',
      keyTemplate: 'catalogue/{sku}.png',
      defaults: { size: '1024*1024' },
    });
    const seconds = (Date.now() - started) / 1000;
    const after = await usedMemory(redis);
    return {
      rows: report.enqueued,
      seconds: round(seconds, 1),
      rowsPerSecond: round(report.enqueued / seconds, 0),
      redisBytesPerJob: round((after - before) / report.enqueued, 0),
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
