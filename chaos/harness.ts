/**
 * The chaos harness: real processes — redis-server with AOF (restartable on its port), s3rver
 * behind a switchable fault proxy, the emulator with fault injection, `zimage worker` child
 * processes, a webhook receiver that verifies with `standardwebhooks`. The invariant check after
 * each scenario is in invariants.ts.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { S3Client } from '@aws-sdk/client-s3';
import { createEmulator, type Emulator, type EmulatorOptionsInput } from '@zimage/emulator';
import { createProducer, type Producer } from '@zimage/producer';
import { freePort, generateWebhookSecret, type JobRequestInput } from '@zimage/shared';
import { Redis } from 'ioredis';
import { spawnNode, waitFor, type WorkerProcess } from '../bench/support.js';
import { startS3FaultProxy, type S3FaultProxy } from '../test/support/s3-fault-proxy.js';
import { startS3rver, type S3rverHandle } from '../test/support/s3rver-server.js';
import { startWebhookReceiver, type WebhookReceiver } from '../test/support/webhook-receiver.js';
import type { BatchRun } from './invariants.js';

/** redis-server with AOF on a fixed port and folder, so it can be restarted with its data. */
export class RedisProcess {
  #child: ChildProcess | undefined;
  readonly dir = mkdtempSync(join(tmpdir(), 'zimage-chaos-redis-'));
  private constructor(readonly port: number) {}

  static async start(): Promise<RedisProcess> {
    const redis = new RedisProcess(await freePort());
    await redis.up();
    return redis;
  }

  get url(): string {
    return `redis://127.0.0.1:${this.port}`;
  }

  async up(): Promise<void> {
    this.#child = spawn('redis-server', ['--port', String(this.port), '--bind', '127.0.0.1', '--dir', this.dir, '--appendonly', 'yes', '--appendfsync', 'everysec', '--save', '', '--maxmemory-policy', 'noeviction'], { stdio: 'ignore' });
    await waitFor('redis-server', async () => {
      const probe = new Redis(this.url, { lazyConnect: true, maxRetriesPerRequest: 0, retryStrategy: () => null });
      probe.on('error', () => {});
      try {
        await probe.connect();
        return (await probe.ping()) === 'PONG';
      } catch {
        return false;
      } finally {
        probe.disconnect();
      }
    }, 20_000, 50);
  }

  /** SIGTERM: Redis flushes its AOF and exits, as in an orderly restart. */
  async down(): Promise<void> {
    const child = this.#child;
    this.#child = undefined;
    if (!child || child.exitCode !== null) return;
    const exited = new Promise((resolve) => child.once('exit', resolve));
    child.kill('SIGTERM');
    await exited;
  }

  async close(): Promise<void> {
    await this.down();
    rmSync(this.dir, { recursive: true, force: true });
  }
}

export interface ChaosEnv {
  redis: RedisProcess;
  /** The real S3 (s3rver). The harness verifies objects here, never through the proxy. */
  s3: S3rverHandle;
  /** What the workers use as S3: a proxy in front of `s3` that can refuse or go down. */
  s3Proxy: S3FaultProxy;
  /** A client of `s3` itself. */
  s3Client: S3Client;
  emulator: Emulator;
  receiver: WebhookReceiver;
  secret: string;
  /** S3 down as the workers see it: s3rver stopped, and connections to its address refused. */
  stopStorage(): Promise<void>;
  /** S3 up and the proxy passing requests, whatever fault was on (a scenario that failed midway). */
  startStorage(): Promise<void>;
  close(): Promise<void>;
}

export async function startChaosEnv(): Promise<ChaosEnv> {
  const redis = await RedisProcess.start();
  const s3 = await startS3rver('chaos');
  const s3Proxy = await startS3FaultProxy(s3.endpoint);
  const s3Client = s3.client();
  let storageStopped = false;
  const emulator = await createEmulator({ latency: { minMs: 50, maxMs: 250, extendExtraMinMs: 0, extendExtraMaxMs: 0 }, quota: { rpm: Infinity, rps: Infinity, burst: { enabled: false } }, images: 'template' });
  const secret = generateWebhookSecret();
  const receiver = await startWebhookReceiver(secret);
  return {
    redis,
    s3,
    s3Proxy,
    s3Client,
    emulator,
    receiver,
    secret,
    async stopStorage() {
      // The proxy too: workers then get ECONNREFUSED, as from a stopped S3 they talked to directly.
      storageStopped = true;
      await s3Proxy.setMode('down');
      await s3.stop();
    },
    async startStorage() {
      if (storageStopped) await s3.start();
      storageStopped = false;
      await s3Proxy.setMode('pass');
    },
    async close() {
      await receiver.close();
      await emulator.close();
      s3Client.destroy();
      await s3Proxy.close();
      await s3.close();
      await redis.close();
    },
  };
}

export interface Fleet {
  prefix: string;
  workers: WorkerProcess[];
  /** Worker processes killed with SIGKILL so far (each may lose its in-flight generations). */
  kills: number;
  start(): WorkerProcess;
  kill9(index: number): void;
  stopAll(): Promise<void>;
}

export const WORKER_CONCURRENCY = 4;

export function startFleet(env: ChaosEnv, prefix: string, count: number): Fleet {
  const workerEnv = {
    REDIS_URL: env.redis.url,
    ZIMAGE_PREFIX: prefix,
    DASHSCOPE_API_KEY: 'sk-chaos-0123456789abcdef',
    DASHSCOPE_BASE_URL: env.emulator.url,
    STORAGE_URL: `s3://chaos/${prefix}`,
    AWS_ENDPOINT_URL_S3: env.s3Proxy.endpoint,
    AWS_REGION: 'us-east-1',
    AWS_ACCESS_KEY_ID: 'S3RVER',
    AWS_SECRET_ACCESS_KEY: 'S3RVER',
    ZIMAGE_S3_FORCE_PATH_STYLE: 'true',
    ZIMAGE_RPM: '60000',
    ZIMAGE_CONCURRENCY: String(WORKER_CONCURRENCY),
    ZIMAGE_REQUEST_TIMEOUT_MS: '5000',
    ZIMAGE_SHUTDOWN_TIMEOUT_MS: '15000',
    ZIMAGE_WEBHOOK_SECRET: env.secret,
    ZIMAGE_WEBHOOK_ALLOWED_HOSTS: '127.0.0.1',
    ZIMAGE_WEBHOOK_RETRY_SCHEDULE: '200ms,500ms,1s,2s,4s,8s,15s,30s,30s,30s',
  };
  const fleet: Fleet = {
    prefix,
    workers: [],
    kills: 0,
    start() {
      const worker = spawnNode(['packages/cli/src/main.ts', 'worker'], workerEnv);
      fleet.workers.push(worker);
      return worker;
    },
    kill9(index) {
      const worker = fleet.workers[index];
      if (!worker || worker.child.exitCode !== null) return;
      worker.child.kill('SIGKILL');
      fleet.kills += 1;
      fleet.workers.splice(index, 1);
    },
    async stopAll() {
      const all = fleet.workers.splice(0);
      await Promise.all(all.map((w) => w.stop()));
    },
  };
  for (let i = 0; i < count; i++) fleet.start();
  return fleet;
}

/** Builds `jobs` requests (each with a webhook to the receiver); `idempotent` gives each an idempotency key. */
export function chaosRequests(env: ChaosEnv, jobs: number, idempotent = false): JobRequestInput[] {
  const run = randomUUID().slice(0, 8);
  return Array.from({ length: jobs }, (_, i) => ({
    prompt: `Chaos item ${i} ${randomUUID().slice(0, 6)}`,
    size: '512*512',
    metadata: { n: String(i) },
    webhook: { url: `${env.receiver.url}/hook` },
    ...(idempotent ? { idempotencyKey: `chaos-${run}-${i}` } : {}),
  }));
}

/** Enqueues the requests as one batch, with a batch.completed webhook. */
export async function enqueueBatch(env: ChaosEnv, producer: Producer, requests: JobRequestInput[]): Promise<BatchRun & { created: number }> {
  const { batchId, jobs: created } = await producer.enqueueMany(requests, { webhook: { url: `${env.receiver.url}/hook`, events: ['batch.completed'] } });
  return { batchId, jobIds: created.map((j) => j.jobId), requests, created: created.filter((j) => j.created).length };
}

export async function waitForBatchEnd(producer: Producer, batchId: string, timeoutMs: number): Promise<void> {
  await waitFor(`batch ${batchId}`, async () => !!(await producer.getBatch(batchId).catch(() => null))?.completedAt, timeoutMs, 200);
}

/**
 * Makes `rates` the emulator's only fault rates. `configure()` merges objects field by field, so
 * `{ rates: {} }` would keep every rate set before; `undefined` resets the field to its default.
 */
export function setFaultRates(env: ChaosEnv, rates: NonNullable<NonNullable<EmulatorOptionsInput['faults']>['rates']>): void {
  env.emulator.configure({ faults: { rates: undefined } });
  if (Object.keys(rates).length > 0) env.emulator.configure({ faults: { rates } });
}

/** Until the batch has at least `count` succeeded jobs (a fault then meets a batch in full flow). */
export async function waitForSucceeded(producer: Producer, batchId: string, count: number, timeoutMs: number): Promise<void> {
  await waitFor(`${count} succeeded in batch ${batchId}`, async () => ((await producer.getBatch(batchId).catch(() => null))?.succeeded ?? 0) >= count, timeoutMs, 50);
}

export async function newProducer(env: ChaosEnv, prefix: string): Promise<Producer> {
  return createProducer({ redisUrl: env.redis.url, prefix, maxAttempts: 8, webhookPolicy: { allowedHosts: ['127.0.0.1'] } });
}

export type { EmulatorOptionsInput };
