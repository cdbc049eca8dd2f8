/**
 * Scenario 4 — interactive under backlog. A bulk batch saturates the account's quota; meanwhile
 * priority jobs (priority 100) arrive one at a time. Their queue wait — from enqueue until the
 * upstream call starts, i.e. total time minus generation, download and storage — should stay
 * within a few upstream latencies, however long the bulk backlog is.
 */
import { startFleet } from '../fleet.js';
import { quotaEmulator } from './quota.js';
import { percentile, round, sleep, waitFor } from '../support.js';

export async function runInteractiveScenario(options: { redisUrl: string; bulkJobs: number; priorityJobs: number; quotaPerMinute: number }) {
  const fleet = await startFleet({ redisUrl: options.redisUrl, emulator: quotaEmulator(options.quotaPerMinute), workers: 2, rpm: options.quotaPerMinute });
  const { producer } = fleet;
  try {
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
    await fleet.close();
  }
}
