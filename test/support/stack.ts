/**
 * A whole zimage pipeline for one test: a unique key prefix on the shared test Redis, the emulator
 * on port 0, real storage (a temp folder or s3rver), a producer and, unless told otherwise, an
 * in-process worker. `await using stack = await startStack(...)` tears it all down.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomUUID } from 'node:crypto';
import { inject } from 'vitest';
import { Redis } from 'ioredis';
import { createEmulator, type Emulator, type EmulatorOptionsInput } from '@zimage/emulator';
import { createProducer, type BatchStatus, type JobView, type Producer } from '@zimage/producer';
import {
  createLogger,
  createStorage,
  eventsStreamKey,
  zimageEventSchema,
  type Storage,
  type ZimageEvent,
} from '@zimage/shared';
import { startGenerationWorker, type GenerationWorker, type GenerationWorkerOptions } from '@zimage/worker';

export const TEST_API_KEY = 'sk-test-0123456789abcdef';
export const FAST_BACKOFF = { baseMs: 50, maxMs: 400, jitter: 0.5 };

export interface StackOptions {
  emulator?: EmulatorOptionsInput;
  /** `file` (a temp folder, the default) or an s3 endpoint and bucket. */
  storage?: { s3: { endpoint: string; bucket: string; prefix?: string } };
  /** Worker overrides, or false to start no worker. */
  worker?: Partial<GenerationWorkerOptions> | false;
  maxAttempts?: number;
  /** The test account's configured quota (ZIMAGE_RPM). @defaultValue 60000 */
  rpm?: number;
  /** The producer's ZIMAGE_WEBHOOK_ALLOWED_HOSTS. @defaultValue none */
  webhookAllowedHosts?: string[];
}

export interface Stack extends AsyncDisposable {
  prefix: string;
  redisUrl: string;
  redis: Redis;
  emulator: Emulator;
  storage: Storage;
  outputDir: string;
  producer: Producer;
  worker: GenerationWorker | undefined;
  workerOptions: GenerationWorkerOptions;
  startWorker(overrides?: Partial<GenerationWorkerOptions>): Promise<GenerationWorker>;
  waitForBatch(batchId: string, timeoutMs?: number): Promise<BatchStatus>;
  waitForJob(jobId: string, until: (job: JobView) => boolean, timeoutMs?: number): Promise<JobView>;
  events(): Promise<ZimageEvent[]>;
  close(): Promise<void>;
}

export async function startStack(options: StackOptions = {}): Promise<Stack> {
  const redisUrl = inject('redisUrl');
  const prefix = `t${randomUUID().slice(0, 8)}`;
  const redis = new Redis(redisUrl);
  const emulator = await createEmulator({
    latency: { minMs: 5, maxMs: 20, extendExtraMinMs: 5, extendExtraMaxMs: 10 },
    quota: { rpm: Infinity, rps: Infinity, burst: { enabled: false } },
    ...options.emulator,
  });
  const outputDir = mkdtempSync(join(tmpdir(), 'zimage-out-'));
  const storage = options.storage
    ? createStorage({
        url: `s3://${options.storage.s3.bucket}${options.storage.s3.prefix ? `/${options.storage.s3.prefix}` : ''}`,
        s3: { endpoint: options.storage.s3.endpoint, forcePathStyle: true, region: 'us-east-1', accessKeyId: 'S3RVER', secretAccessKey: 'S3RVER' },
      })
    : createStorage({ url: `file:${outputDir}` });
  const producer = await createProducer({ redisUrl, prefix, maxAttempts: options.maxAttempts ?? 4, webhookPolicy: { allowedHosts: options.webhookAllowedHosts ?? [] } });
  const logger = createLogger({ level: process.env['TEST_LOG_LEVEL'] ?? 'silent', pretty: false });
  const workerOptions: GenerationWorkerOptions = {
    redisUrl,
    prefix,
    logger,
    accounts: [{ id: 'test', region: 'singapore', baseUrl: emulator.url, apiKey: TEST_API_KEY, rpm: options.rpm ?? 60_000 }],
    storage,
    governorLogIntervalMs: 0,
    concurrency: 4,
    maxImageBytes: 20 * 1024 * 1024,
    requestTimeoutMs: 10_000,
    connectTimeoutMs: 2_000,
    shutdownTimeoutMs: 10_000,
    retryBackoff: FAST_BACKOFF,
    postGenerationBackoff: FAST_BACKOFF,
    pauseSupervisorIntervalMs: 100,
    ...(options.worker || {}),
  };
  const workers: GenerationWorker[] = [];
  const startWorker = async (overrides: Partial<GenerationWorkerOptions> = {}) => {
    const worker = await startGenerationWorker({ ...workerOptions, ...overrides });
    workers.push(worker);
    return worker;
  };
  const worker = options.worker === false ? undefined : await startWorker();

  async function waitFor<T>(what: string, probe: () => Promise<T | undefined>, timeoutMs: number): Promise<T> {
    const until = Date.now() + timeoutMs;
    for (;;) {
      const value = await probe();
      if (value !== undefined) return value;
      if (Date.now() > until) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
      await new Promise((r) => setTimeout(r, 50));
    }
  }

  let closed: Promise<void> | undefined;
  const close = () => {
    closed ??= (async () => {
      for (const w of workers) await w.close();
      await producer.close();
      await emulator.close();
      await storage.close();
      const keys = await redis.keys(`${prefix}:*`);
      if (keys.length > 0) await redis.del(...keys);
      redis.disconnect();
      rmSync(outputDir, { recursive: true, force: true });
    })();
    return closed;
  };

  return {
    prefix,
    redisUrl,
    redis,
    emulator,
    storage,
    outputDir,
    producer,
    worker,
    workerOptions,
    startWorker,
    waitForBatch: (batchId, timeoutMs = 30_000) =>
      waitFor(`batch ${batchId}`, async () => {
        const status = await producer.getBatch(batchId);
        return status?.completedAt ? status : undefined;
      }, timeoutMs),
    waitForJob: (jobId, until, timeoutMs = 30_000) =>
      waitFor(`job ${jobId}`, async () => {
        const job = await producer.getJob(jobId);
        return job && until(job) ? job : undefined;
      }, timeoutMs),
    async events() {
      const entries = await redis.xrange(eventsStreamKey(prefix), '-', '+');
      return entries.map(([, fields]) => {
        const json = fields[fields.indexOf('event') + 1] as string;
        return zimageEventSchema.parse(JSON.parse(json));
      });
    },
    close,
    [Symbol.asyncDispose]: close,
  };
}

export function isTerminal(job: JobView): boolean {
  return job.state === 'completed' || job.state === 'failed';
}
