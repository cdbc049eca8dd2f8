/**
 * Baseline (b): BullMQ's built-in limiter set to the quota, `{ max: quota, duration: 60000 }`,
 * four workers, and retries with exponential backoff when the API says 429.
 */
import { createEmulator } from '@zimage/emulator';
import { Queue, Worker } from 'bullmq';
import { Redis } from 'ioredis';
import { randomUUID } from 'node:crypto';
import type { QuotaOptions } from './quota.js';
import { quotaEmulator, summarise, type QuotaRun } from './quota-emulator.js';
import { API_KEY, withTimeout } from '../support.js';

const PATH = '/api/v1/services/aigc/multimodal-generation/generation';

export async function runBullmqLimiter(options: QuotaOptions, workerCount = 4): Promise<QuotaRun> {
  const emulator = await createEmulator(quotaEmulator(options.quotaPerMinute));
  const name = `limiter-${randomUUID().slice(0, 6)}`;
  const connection = new Redis(options.redisUrl, { maxRetriesPerRequest: null });
  const queue = new Queue(name, { connection });
  const connections: Redis[] = [];
  const track = (c: Redis) => {
    connections.push(c);
    return c;
  };
  const workers = Array.from(
    { length: workerCount },
    () =>
      new Worker(
        name,
        async (job) => {
          const response = await fetch(`${emulator.url}${PATH}`, {
            method: 'POST',
            headers: { authorization: `Bearer ${API_KEY}`, 'content-type': 'application/json' },
            body: JSON.stringify({ model: 'z-image-turbo', input: { messages: [{ role: 'user', content: [{ text: String(job.data.prompt) }] }] }, parameters: { size: '512*512' } }),
            signal: AbortSignal.timeout(30_000),
          });
          const body = (await response.json()) as { output?: { choices: { message: { content: { image?: string }[] } }[] } };
          if (response.status !== 200) throw new Error(`HTTP ${response.status}`);
          const url = body.output?.choices[0]?.message.content.find((c) => c.image)?.image;
          if (url) await (await fetch(url, { signal: AbortSignal.timeout(30_000) })).arrayBuffer();
        },
        { connection: track(new Redis(options.redisUrl, { maxRetriesPerRequest: null })), concurrency: 8, limiter: { max: options.quotaPerMinute, duration: 60_000 } },
      ),
  );
  try {
    const started = Date.now();
    await queue.addBulk(
      Array.from({ length: options.jobs }, (_, i) => ({
        name: 'generate',
        data: { prompt: `Catalogue item ${i}` },
        opts: { attempts: 20, backoff: { type: 'exponential', delay: 1000, jitter: 0.5 }, removeOnComplete: true },
      })),
    );
    const deadline = started + options.baselineLimitSeconds * 1000;
    let completed = 0;
    for (;;) {
      completed = emulator.stats().downloads;
      if (completed >= options.jobs || Date.now() >= deadline) break;
      await new Promise((r) => setTimeout(r, 100));
    }
    const seconds = (Math.min(Date.now(), deadline) - started) / 1000;
    return summarise(options.jobs, completed, seconds, options.quotaPerMinute, emulator.stats());
  } finally {
    // Bounded: a close that waits on a stuck job falls back to a forced close.
    await withTimeout(Promise.all(workers.map((w) => w.close())), 15_000, 'closing the BullMQ workers').catch(() => Promise.all(workers.map((w) => w.close(true))).catch(() => {}));
    await withTimeout(queue.obliterate({ force: true }), 15_000, 'obliterating the queue').catch(() => {});
    await queue.close().catch(() => {});
    connection.disconnect();
    for (const c of connections) c.disconnect();
    await emulator.close();
  }
}
