/**
 * Waits, feeds and the HTTP API while Redis goes away (a proxy in front of the real Redis drops
 * every connection): a short outage is ridden out, a long one ends as REDIS_UNAVAILABLE in our
 * words (never a raw ioredis error or an INTERNAL "bug"), and the HTTP API answers 503.
 */
import { randomUUID } from 'node:crypto';
import { describe, expect, inject, it } from 'vitest';
import { createApi } from '@zimage/api';
import { createProducer } from '@zimage/producer';
import { createFileStorage, createLogger, createRedisConnection, isAppError, waitForRedis } from '@zimage/shared';
import { startTcpProxy } from './support/tcp-proxy.js';
import { until } from './support/until.js';

const BUDGET_MS = 60_000;
/** The outage the first test stages: longer than a wait's 5 s re-check, shorter than its 30 s tolerance. */
const OUTAGE_MS = 7_000;

function redisPort(): number {
  return Number(new URL(inject('redisUrl')).port);
}

describe('waits and the API through a Redis outage', () => {
  it('waitForBatch rides out a 7-second outage and resolves once the batch completes', async () => {
    await using proxy = await startTcpProxy(redisPort());
    const prefix = `o${randomUUID().slice(0, 8)}`;
    const producer = await createProducer({ redisUrl: `redis://127.0.0.1:${proxy.port}`, prefix });
    const direct = await createProducer({ redisUrl: inject('redisUrl'), prefix });
    try {
      const { batchId } = await producer.enqueueMany([{ prompt: 'through the outage', size: '512*512' }]);
      const outcome = producer.waitForBatch(batchId, { timeoutMs: BUDGET_MS }).then(
        (batch) => ({ batch }),
        (error: unknown) => ({ error }),
      );
      await proxy.cut();
      // The batch finishes while the waiter cannot see Redis.
      await direct.cancelBatch(batchId);
      await new Promise((resolve) => setTimeout(resolve, OUTAGE_MS));
      await proxy.restore();
      const result = await outcome;
      expect('error' in result ? result.error : undefined).toBeUndefined();
      expect('batch' in result && result.batch.completedAt).toBeTruthy();
    } finally {
      await producer.close();
      await direct.close();
    }
  });

  it('events({ batchId }) rides out an outage from the same position: nothing skipped, nothing repeated', async () => {
    await using proxy = await startTcpProxy(redisPort());
    const prefix = `o${randomUUID().slice(0, 8)}`;
    const producer = await createProducer({ redisUrl: `redis://127.0.0.1:${proxy.port}`, prefix });
    const direct = await createProducer({ redisUrl: inject('redisUrl'), prefix });
    try {
      const { batchId, jobs } = await producer.enqueueMany([1, 2, 3].map((i) => ({ prompt: `feed ${i}`, size: '512*512' })));
      const seen: string[] = [];
      const feed = (async () => {
        for await (const { event } of producer.events({ batchId })) seen.push(event.type === 'batch.completed' ? event.type : `${event.type}:${'jobId' in event.data ? event.data.jobId : ''}`);
      })();
      await direct.cancelJob(jobs[0]?.jobId as string);
      await until(() => seen.length === 1, BUDGET_MS);
      await proxy.cut();
      // Published while the feed cannot read.
      await direct.cancelBatch(batchId);
      await new Promise((resolve) => setTimeout(resolve, 3_000));
      await proxy.restore();
      await feed;
      expect(seen.at(-1)).toBe('batch.completed');
      expect(seen.slice(0, -1).sort()).toEqual(jobs.map((j) => `job.failed:${j.jobId}`).sort());
    } finally {
      await producer.close();
      await direct.close();
    }
  });

  it('a wait whose Redis does not come back ends as REDIS_UNAVAILABLE by its deadline', async () => {
    await using proxy = await startTcpProxy(redisPort());
    const producer = await createProducer({ redisUrl: `redis://127.0.0.1:${proxy.port}`, prefix: `o${randomUUID().slice(0, 8)}` });
    try {
      const { jobId } = await producer.enqueue({ prompt: 'never answered', size: '512*512' });
      const waiting = producer.waitForJob(jobId, { timeoutMs: 8_000 }).catch((error: unknown) => error);
      await proxy.cut();
      const error = await waiting;
      expect(isAppError(error) && error.code).toBe('REDIS_UNAVAILABLE');
      expect((error as Error).message).toMatch(/^Redis has been unreachable for \d+ s while waiting for job /);
    } finally {
      await producer.close();
    }
  });

  it('a Redis that stops answering (connections open, nothing comes back) cannot hold a wait past its timeout', async () => {
    await using proxy = await startTcpProxy(redisPort());
    const producer = await createProducer({ redisUrl: `redis://127.0.0.1:${proxy.port}`, prefix: `o${randomUUID().slice(0, 8)}` });
    try {
      const { jobId } = await producer.enqueue({ prompt: 'frozen', size: '512*512' });
      const controller = new AbortController();
      proxy.freeze();
      const started = Date.now();
      const timedOut = await producer.waitForJob(jobId, { timeoutMs: 3_000 }).catch((error: unknown) => error);
      expect(isAppError(timedOut) && timedOut.code).toBe('WAIT_TIMEOUT');
      expect(Date.now() - started).toBeLessThan(BUDGET_MS);
      // And an abort ends such a wait at once.
      const aborted = producer.waitForJob(jobId, { timeoutMs: BUDGET_MS, signal: controller.signal }).catch((error: unknown) => error);
      controller.abort(new Error('stop waiting'));
      expect(((await aborted) as Error).message).toBe('stop waiting');
    } finally {
      producer.queue.disconnect().catch(() => {});
      await Promise.race([producer.close(), new Promise((resolve) => setTimeout(resolve, 2_000))]);
    }
  });

  it('the HTTP API answers 503 REDIS_UNAVAILABLE while Redis is away, and serves again after', async () => {
    await using proxy = await startTcpProxy(redisPort());
    const url = `redis://127.0.0.1:${proxy.port}`;
    const prefix = `o${randomUUID().slice(0, 8)}`;
    const producer = await createProducer({ redisUrl: url, prefix });
    const redis = createRedisConnection(url, 'producer');
    await waitForRedis(redis, url);
    const app = await createApi({ producer, redis, storage: createFileStorage({ dir: '/tmp' }), prefix, tokens: ['outage-token-0123456789'], logger: createLogger({ level: 'silent', pretty: false }) });
    const call = () => app.inject({ method: 'GET', url: '/v1/batches', headers: { authorization: 'Bearer outage-token-0123456789' } });
    try {
      expect((await call()).statusCode).toBe(200);
      await proxy.cut();
      const down = await call();
      expect(down.statusCode).toBe(503);
      expect(down.json().error.code).toBe('REDIS_UNAVAILABLE');
      await proxy.restore();
      await until(async () => (await call()).statusCode === 200, BUDGET_MS, 200);
    } finally {
      await app.close();
      await producer.close();
      redis.disconnect();
    }
  });
});
