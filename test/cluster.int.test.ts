/**
 * Producers and workers unchanged on a Redis Cluster: three masters on loopback
 * (`redis-server --cluster-enabled yes`, `redis-cli --cluster create`), REDIS_URL
 * `redis+cluster://…`, a hash-tagged prefix. The happy path (batch → images → events →
 * batch.completed) and the governor's shared pace run on it.
 */
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Cluster } from 'ioredis';
import { describe, expect, it } from 'vitest';
import { createEmulator } from '@zimage/emulator';
import { createProducer } from '@zimage/producer';
import { createLogger, createStorage, eventsStreamKey, freePort, loadConfig, producerEnvSchema } from '@zimage/shared';
import { startGenerationWorker } from '@zimage/worker';

async function waitFor(condition: () => Promise<boolean> | boolean, timeoutMs: number, what: string): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await condition())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

describe('Redis Cluster', () => {
  it('refuses a prefix without a hash tag on a cluster URL', () => {
    expect(() => loadConfig(producerEnvSchema, { REDIS_URL: 'redis+cluster://127.0.0.1:7000' })).toThrow(/ZIMAGE_PREFIX: must start with a hash tag such as \{zimage\}/);
    expect(loadConfig(producerEnvSchema, { REDIS_URL: 'redis+cluster://127.0.0.1:7000', ZIMAGE_PREFIX: '{zimage}' }).ZIMAGE_PREFIX).toBe('{zimage}');
  });

  it('runs the happy path and the governor on three masters with a hash-tagged prefix', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'zimage-cluster-'));
    const ports = [await freePort(), await freePort(), await freePort()];
    const nodes: ChildProcess[] = ports.map((port) =>
      spawn('redis-server', ['--port', String(port), '--bind', '127.0.0.1', '--cluster-enabled', 'yes', '--cluster-config-file', `nodes-${port}.conf`, '--dir', dir, '--save', '', '--appendonly', 'no'], { stdio: 'ignore' }),
    );
    const emulator = await createEmulator({ latency: { minMs: 5, maxMs: 20 }, quota: { rpm: 6000, rps: 100, burst: { enabled: false } } });
    const storage = createStorage({ url: `file:${join(dir, 'out')}` });
    const logger = createLogger({ level: 'silent', pretty: false });
    let admin: Cluster | undefined;
    try {
      await waitFor(() => {
        try {
          for (const port of ports) execFileSync('redis-cli', ['-p', String(port), 'ping'], { stdio: 'ignore' });
          return true;
        } catch {
          return false;
        }
      }, 10_000, 'cluster nodes');
      execFileSync('redis-cli', ['--cluster', 'create', ...ports.map((p) => `127.0.0.1:${p}`), '--cluster-replicas', '0', '--cluster-yes'], { stdio: 'ignore' });
      await waitFor(() => execFileSync('redis-cli', ['-p', String(ports[0]), 'cluster', 'info']).toString().includes('cluster_state:ok'), 15_000, 'cluster_state:ok');

      const redisUrl = `redis+cluster://127.0.0.1:${ports[0]}`;
      const prefix = '{zc}';
      const producer = await createProducer({ redisUrl, prefix });
      const worker = await startGenerationWorker({
        redisUrl,
        prefix,
        logger,
        accounts: [{ id: 'c', region: 'singapore', baseUrl: emulator.url, apiKey: 'sk-cluster-0123456789', rpm: 600 }],
        storage,
        concurrency: 4,
        maxImageBytes: 20 * 1024 * 1024,
        requestTimeoutMs: 10_000,
        connectTimeoutMs: 2_000,
        shutdownTimeoutMs: 10_000,
        governorLogIntervalMs: 0,
      });
      try {
        const { batchId, jobs } = await producer.enqueueMany(Array.from({ length: 12 }, (_, i) => ({ prompt: `Cluster item ${i}`, size: '512*512' })));
        await waitFor(async () => !!(await producer.getBatch(batchId))?.completedAt, 60_000, 'the batch');
        expect(await producer.getBatch(batchId)).toMatchObject({ total: 12, succeeded: 12, pending: 0 });
        const view = await producer.getJob(jobs[0]!.jobId);
        expect(view?.result?.sha256).toMatch(/^[0-9a-f]{64}$/);

        admin = new Cluster([{ host: '127.0.0.1', port: ports[0]! }]);
        const entries = await admin.xrange(eventsStreamKey(prefix), '-', '+');
        const types = entries.map(([, fields]) => fields[fields.indexOf('type') + 1]);
        expect(types.filter((t) => t === 'job.succeeded')).toHaveLength(12);
        expect(types.filter((t) => t === 'batch.completed')).toHaveLength(1);
        // The governor's shared pace lives in the cluster too, and it paced the calls.
        const [snapshot] = await worker.governor.snapshot();
        expect(snapshot).toMatchObject({ id: 'c' });
        expect(snapshot!.rpm).toBeGreaterThan(0);
        expect(emulator.stats()).toMatchObject({ requests: 12, throttled: 0, imagesGenerated: 12 });
        // Every key of the deployment is in the hash tag's slot.
        const slot = await admin.cluster('KEYSLOT', prefix);
        const keys = await admin.keys('{zc}*').catch(() => [] as string[]);
        for (const key of keys) expect(await admin.cluster('KEYSLOT', key)).toBe(slot);
      } finally {
        await worker.close();
        await producer.close();
      }
    } finally {
      admin?.disconnect();
      for (const node of nodes) node.kill('SIGTERM');
      await emulator.close();
      await storage.close();
      rmSync(dir, { recursive: true, force: true });
    }
  }, 120_000);
});
