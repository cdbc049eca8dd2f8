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
import { API_KEY, spawnWorkers, waitFor, type WorkerProcess } from './support.js';

export interface Fleet {
  emulator: Emulator;
  producer: Producer;
  workers: WorkerProcess[];
  close(): Promise<void>;
}

export async function startFleet(options: { redisUrl: string; emulator: EmulatorOptionsInput; workers: number; rpm: number; concurrency?: number }): Promise<Fleet> {
  const emulator = await createEmulator(options.emulator);
  const prefix = `b${randomUUID().slice(0, 8)}`;
  const output = mkdtempSync(join(tmpdir(), 'zimage-bench-'));
  const producer = await createProducer({ redisUrl: options.redisUrl, prefix });
  const workers = spawnWorkers(options.workers, {
    REDIS_URL: options.redisUrl,
    ZIMAGE_PREFIX: prefix,
    DASHSCOPE_API_KEY: API_KEY,
    DASHSCOPE_BASE_URL: emulator.url,
    STORAGE_URL: `file:${output}`,
    ZIMAGE_RPM: String(options.rpm),
    ZIMAGE_CONCURRENCY: String(options.concurrency ?? 16),
  });
  const close = async () => {
    await Promise.all(workers.map((w) => w.stop()));
    await producer.queue.obliterate({ force: true }).catch(() => {});
    await producer.close();
    await emulator.close();
    rmSync(output, { recursive: true, force: true });
  };
  try {
    await waitFor('workers', async () => (await producer.queue.getWorkers()).length >= options.workers, 30_000);
  } catch (error) {
    await close();
    throw error;
  }
  return { emulator, producer, workers, close };
}
