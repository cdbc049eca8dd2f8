/**
 * The chaos harness: real processes — redis-server with AOF (restartable on its port), s3rver,
 * the emulator with fault injection, `zimage worker` child processes, a webhook receiver that
 * verifies with `standardwebhooks` — and an invariant check after each scenario.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { createHash, randomUUID } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { GetObjectCommand, ListObjectsV2Command, S3Client } from '@aws-sdk/client-s3';
import { createEmulator, type Emulator, type EmulatorOptionsInput } from '@zimage/emulator';
import { createProducer, type Producer } from '@zimage/producer';
import { eventIdFor, eventsStreamKey, freePort, generateWebhookSecret, GENERATE_QUEUE, WEBHOOK_QUEUE } from '@zimage/shared';
import { Queue } from 'bullmq';
import { Redis } from 'ioredis';
import { spawnNode, waitFor, type WorkerProcess } from '../bench/support.js';
import { startS3rver, type S3rverHandle } from '../test/support/s3rver-server.js';
import { startWebhookReceiver, type WebhookReceiver } from '../test/support/webhook-receiver.js';

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
  s3: S3rverHandle;
  s3Client: S3Client;
  emulator: Emulator;
  receiver: WebhookReceiver;
  secret: string;
  close(): Promise<void>;
}

export async function startChaosEnv(): Promise<ChaosEnv> {
  const redis = await RedisProcess.start();
  const s3 = await startS3rver('chaos');
  const s3Client = s3.client();
  const emulator = await createEmulator({ latency: { minMs: 50, maxMs: 250, extendExtraMinMs: 0, extendExtraMaxMs: 0 }, quota: { rpm: Infinity, rps: Infinity, burst: { enabled: false } }, images: 'template' });
  const secret = generateWebhookSecret();
  const receiver = await startWebhookReceiver(secret);
  return {
    redis,
    s3,
    s3Client,
    emulator,
    receiver,
    secret,
    async close() {
      await receiver.close();
      await emulator.close();
      s3Client.destroy();
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
    AWS_ENDPOINT_URL_S3: env.s3.endpoint,
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

export interface Invariants {
  jobs: number;
  succeeded: number;
  failed: number;
  allTerminal: boolean;
  stuck: number;
  objectsVerified: number;
  objectMismatches: number;
  extraObjects: number;
  eventsMissing: number;
  eventsDuplicated: number;
  batchCompleted: number;
  webhooksMissing: number;
  webhooksUnverified: number;
  billed: number;
  kills: number;
  doubleBilled: number;
  doubleBillRatio: number;
  /** Extra generations beyond what kills can explain (each kill may lose its in-flight calls). */
  unexplainedDoubleBills: number;
  ok: boolean;
}

/** Enqueues `jobs` jobs (each with a webhook to the receiver) as one batch. */
export async function enqueueBatch(env: ChaosEnv, producer: Producer, jobs: number): Promise<{ batchId: string; jobIds: string[] }> {
  const { batchId, jobs: created } = await producer.enqueueMany(
    Array.from({ length: jobs }, (_, i) => ({ prompt: `Chaos item ${i} ${randomUUID().slice(0, 6)}`, size: '512*512', metadata: { n: String(i) }, webhook: { url: `${env.receiver.url}/hook` } })),
    { webhook: { url: `${env.receiver.url}/hook`, events: ['batch.completed'] } },
  );
  return { batchId, jobIds: created.map((j) => j.jobId) };
}

export async function waitForBatchEnd(producer: Producer, batchId: string, timeoutMs: number): Promise<void> {
  await waitFor(`batch ${batchId}`, async () => !!(await producer.getBatch(batchId).catch(() => null))?.completedAt, timeoutMs, 200);
}

export async function checkInvariants(env: ChaosEnv, fleet: Fleet, producer: Producer, batchId: string, jobIds: readonly string[], webhookWaitMs: number): Promise<Invariants> {
  const redis = new Redis(env.redis.url);
  const queue = new Queue(GENERATE_QUEUE, { connection: redis, prefix: fleet.prefix });
  const webhooks = new Queue(WEBHOOK_QUEUE, { connection: redis, prefix: fleet.prefix });
  try {
    const views = await Promise.all(jobIds.map((id) => producer.getJob(id)));
    const succeeded = views.filter((v) => v?.state === 'completed');
    const failed = views.filter((v) => v?.state === 'failed' || v?.state === 'cancelled');
    const counts = await queue.getJobCounts('active', 'waiting', 'delayed', 'prioritized');
    const stuck = Object.values(counts).reduce((a, b) => a + b, 0);

    // Every stored object is where the result says, with the bytes the result's sha256 names.
    let verified = 0;
    let mismatches = 0;
    for (const view of succeeded) {
      const result = view!.result!;
      const object = await env.s3Client.send(new GetObjectCommand({ Bucket: 'chaos', Key: `${fleet.prefix}/${result.key}` })).catch(() => undefined);
      const bytes = object?.Body ? await object.Body.transformToByteArray() : undefined;
      if (bytes && createHash('sha256').update(bytes).digest('hex') === result.sha256) verified += 1;
      else mismatches += 1;
    }
    let listed = 0;
    let token: string | undefined;
    do {
      const page = await env.s3Client.send(new ListObjectsV2Command({ Bucket: 'chaos', Prefix: `${fleet.prefix}/`, ContinuationToken: token }));
      listed += page.KeyCount ?? 0;
      token = page.IsTruncated ? page.NextContinuationToken : undefined;
    } while (token);

    // One terminal event per job on the stream, one batch.completed.
    const entries = await redis.xrange(eventsStreamKey(fleet.prefix), '-', '+');
    const ids = entries.map(([, fields]) => fields[fields.indexOf('id') + 1] as string);
    const perJob = new Map<string, number>();
    for (const id of ids) perJob.set(id, (perJob.get(id) ?? 0) + 1);
    const expectedEvents = jobIds.map((id) => {
      const view = views[jobIds.indexOf(id)];
      return eventIdFor(view?.state === 'completed' ? 'job.succeeded' : 'job.failed', id);
    });
    const eventsMissing = expectedEvents.filter((id) => !perJob.has(id)).length;
    const eventsDuplicated = [...perJob.values()].filter((n) => n > 1).length;
    const batchCompleted = entries.filter(([, fields]) => fields[fields.indexOf('type') + 1] === 'batch.completed').length;

    // Every event eventually delivered to the receiver, verified.
    const wanted = [...expectedEvents, eventIdFor('batch.completed', batchId)];
    const delivered = () => new Set(env.receiver.received.filter((d) => d.verifyError === undefined).map((d) => String(d.headers['webhook-id'])));
    await waitFor('webhooks', async () => wanted.every((id) => delivered().has(id)), webhookWaitMs, 200).catch(() => {});
    const got = delivered();
    const webhooksMissing = wanted.filter((id) => !got.has(id)).length;
    const webhooksUnverified = env.receiver.received.filter((d) => d.verifyError !== undefined).length;
    await webhooks.getJobCounts('failed');

    const billed = env.emulator.stats().imagesGenerated;
    const doubleBilled = Math.max(0, billed - succeeded.length);
    const unexplained = Math.max(0, doubleBilled - fleet.kills * WORKER_CONCURRENCY);
    const invariants = {
      jobs: jobIds.length,
      succeeded: succeeded.length,
      failed: failed.length,
      allTerminal: succeeded.length + failed.length === jobIds.length,
      stuck,
      objectsVerified: verified,
      objectMismatches: mismatches,
      extraObjects: Math.max(0, listed - succeeded.length),
      eventsMissing,
      eventsDuplicated,
      batchCompleted,
      webhooksMissing,
      webhooksUnverified,
      billed,
      kills: fleet.kills,
      doubleBilled,
      doubleBillRatio: succeeded.length === 0 ? 0 : Math.round((doubleBilled / succeeded.length) * 10_000) / 10_000,
      unexplainedDoubleBills: unexplained,
    };
    const ok =
      invariants.allTerminal &&
      stuck === 0 &&
      mismatches === 0 &&
      invariants.extraObjects === 0 &&
      eventsMissing === 0 &&
      eventsDuplicated === 0 &&
      batchCompleted === 1 &&
      webhooksMissing === 0 &&
      webhooksUnverified === 0 &&
      unexplained === 0;
    return { ...invariants, ok };
  } finally {
    await queue.close();
    await webhooks.close();
    redis.disconnect();
  }
}

export async function newProducer(env: ChaosEnv, prefix: string): Promise<Producer> {
  return createProducer({ redisUrl: env.redis.url, prefix, maxAttempts: 8, webhookPolicy: { allowedHosts: ['127.0.0.1'] } });
}

export type { EmulatorOptionsInput };
