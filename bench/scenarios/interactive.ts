/**
 * Scenario 4 — interactive under backlog. A bulk batch saturates the account's quota; meanwhile
 * priority jobs (priority 100) arrive one at a time. Their queue wait — from enqueue until the
 * upstream call starts, i.e. total time minus generation, download and storage — should stay
 * within a few upstream latencies, however long the bulk backlog is.
 */
import { createEmulator } from '@zimage/emulator';
import { createProducer } from '@zimage/producer';
import { randomUUID } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { quotaEmulator } from './quota.js';
import { API_KEY, percentile, round, sleep, spawnWorkers, waitFor } from '../support.js';

export async function runInteractiveScenario(options: { redisUrl: string; bulkJobs: number; priorityJobs: number; quotaPerMinute: number }) {
  const emulator = await createEmulator(quotaEmulator(options.quotaPerMinute));
  const prefix = `bp${randomUUID().slice(0, 6)}`;
  const output = mkdtempSync(join(tmpdir(), 'zimage-bench-'));
  const producer = await createProducer({ redisUrl: options.redisUrl, prefix });
  const workers = spawnWorkers(2, {
    REDIS_URL: options.redisUrl,
    ZIMAGE_PREFIX: prefix,
    DASHSCOPE_API_KEY: API_KEY,
    DASHSCOPE_BASE_URL: emulator.url,
    STORAGE_URL: `file:${output}`,
    ZIMAGE_RPM: String(options.quotaPerMinute),
    ZIMAGE_CONCURRENCY: '16',
  });
  try {
    await waitFor('workers', async () => (await producer.queue.getWorkers()).length >= 2, 30_000);
    await producer.enqueueMany(Array.from({ length: options.bulkJobs }, (_, i) => ({ prompt: `Bulk item ${i}`, size: '512*512' })));
    await sleep(8_000); // let the governor reach the quota and the backlog saturate it
    const ids: string[] = [];
    for (let i = 0; i < options.priorityJobs; i++) {
      ids.push((await producer.enqueue({ prompt: `Interactive request ${i}`, size: '512*512', priority: 100 })).jobId);
      await sleep(400);
    }
    await waitFor('priority jobs', async () => {
      for (const id of ids) if ((await producer.getJob(id))?.state !== 'completed') return false;
      return true;
    }, 10 * 60_000, 200);
    const waits: number[] = [];
    const latencies: number[] = [];
    for (const id of ids) {
      const result = (await producer.getJob(id))?.result;
      if (!result) continue;
      waits.push(result.timings.totalMs - result.timings.generateMs - result.timings.downloadMs - result.timings.storeMs);
      latencies.push(result.timings.generateMs);
    }
    const upstreamLatencyMs = latencies.reduce((a, b) => a + b, 0) / Math.max(1, latencies.length);
    const bulkLeft = (await producer.queue.getJobCounts('prioritized', 'waiting'))['prioritized'] ?? 0;
    return {
      bulkJobs: options.bulkJobs,
      bulkStillQueued: bulkLeft,
      priorityJobs: ids.length,
      waitP50Ms: Math.round(percentile(waits, 50)),
      waitP95Ms: Math.round(percentile(waits, 95)),
      upstreamLatencyMs: Math.round(upstreamLatencyMs),
      p95OverLatency: round(percentile(waits, 95) / upstreamLatencyMs, 2),
    };
  } finally {
    await Promise.all(workers.map((w) => w.stop()));
    await producer.queue.obliterate({ force: true }).catch(() => {});
    await producer.close();
    await emulator.close();
    rmSync(output, { recursive: true, force: true });
  }
}
