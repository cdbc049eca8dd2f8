/**
 * Idempotency-Key for requests that outlive the "in progress" marker's lifetime, and for batch
 * uploads whose idempotency record was lost.
 */
import { randomUUID } from 'node:crypto';
import { afterEach, beforeEach, describe, expect, inject, it } from 'vitest';
import { Redis } from 'ioredis';
import { apiIdempotencyKey } from '@zimage/shared';
import { createIdempotency, fingerprintOf, type StoredResponse } from '../packages/api/src/idempotency.js';
import { startApi } from './support/api-harness.js';
import { until } from './support/until.js';

const LIFETIME_MS = 300;

describe('Idempotency-Key in-progress marker', () => {
  let redis: Redis;
  let prefix: string;
  beforeEach(() => {
    redis = new Redis(inject('redisUrl'));
    prefix = `t${randomUUID().slice(0, 8)}`;
  });
  afterEach(async () => {
    const keys = await redis.keys(`${prefix}:*`);
    if (keys.length > 0) await redis.del(...keys);
    redis.disconnect();
  });

  /** A handler that runs until released, counting how often it was started. */
  function slowHandler() {
    let release!: () => void;
    const released = new Promise<void>((resolve) => (release = resolve));
    const state = { runs: 0, release };
    const handler = async (): Promise<StoredResponse> => {
      state.runs += 1;
      await released;
      return { status: 202, body: { run: state.runs } };
    };
    return { state, handler };
  }

  /** Samples the marker's PTTL until `lifetimes` marker lifetimes have passed. */
  async function watchMarker(redisKey: string, lifetimes: number): Promise<number[]> {
    const since = Date.now();
    const ttls: number[] = [];
    await until(async () => {
      ttls.push(await redis.pttl(redisKey));
      return Date.now() - since > lifetimes * LIFETIME_MS;
    }, 20_000, 20);
    return ttls;
  }

  it('is kept alive while a slow handler runs, so a repeat gets IDEMPOTENCY_IN_PROGRESS instead of running again', async () => {
    const idempotency = createIdempotency(redis, prefix, { inProgressMs: LIFETIME_MS });
    const redisKey = apiIdempotencyKey(prefix, fingerprintOf('POST /v1/batches', 'slow-upload'));
    const { state, handler } = slowHandler();
    const first = idempotency.run('slow-upload', 'POST /v1/batches', 'fp', handler);
    await until(() => state.runs === 1);

    const ttls = await watchMarker(redisKey, 5);
    expect(Math.min(...ttls), 'the marker never lapsed').toBeGreaterThan(0);
    expect(Math.max(...ttls), 'the marker keeps its short lifetime').toBeLessThanOrEqual(LIFETIME_MS);

    await expect(idempotency.run('slow-upload', 'POST /v1/batches', 'fp', handler)).rejects.toMatchObject({ code: 'IDEMPOTENCY_IN_PROGRESS' });
    expect(state.runs).toBe(1);

    state.release();
    await expect(first).resolves.toEqual({ status: 202, body: { run: 1 }, replayed: false });
    await expect(idempotency.run('slow-upload', 'POST /v1/batches', 'fp', handler)).resolves.toEqual({ status: 202, body: { run: 1 }, replayed: true });
    expect(state.runs).toBe(1);
    expect(await redis.pttl(redisKey)).toBeGreaterThan(23 * 3600 * 1000);
  });

  it('neither extends nor deletes a marker that is no longer its own', async () => {
    const idempotency = createIdempotency(redis, prefix, { inProgressMs: LIFETIME_MS });
    const redisKey = apiIdempotencyKey(prefix, fingerprintOf('POST /v1/jobs', 'taken-over'));
    let fail!: (error: Error) => void;
    const failing = new Promise<never>((_resolve, reject) => (fail = reject));
    let started = false;
    const first = idempotency.run('taken-over', 'POST /v1/jobs', 'fp', async () => {
      started = true;
      return failing;
    });
    await until(() => started);

    // The marker was lost and another request claimed the key: its marker is left to expire.
    const other = JSON.stringify({ state: 'in-progress', fingerprint: 'fp', token: 'someone-else' });
    await redis.set(redisKey, other, 'PX', LIFETIME_MS);
    await until(async () => (await redis.exists(redisKey)) === 0, 5 * LIFETIME_MS);

    // Our handler fails on our side (a 5xx): the other request's marker stays.
    await redis.set(redisKey, other, 'PX', 60_000);
    fail(new Error('upstream down'));
    await expect(first).rejects.toThrow('upstream down');
    expect(await redis.get(redisKey)).toBe(other);
  });
});

describe('POST /v1/batches with Idempotency-Key after the record was lost', () => {
  it('answers with the batch the first upload created: one batch, one set of jobs, the same body', async () => {
    await using api = await startApi({ worker: false });
    const { prefix, redis, producer } = api.stack;
    const queued = await api.call('POST', '/v1/jobs', { body: { prompt: 'Cup', size: '512*512', idempotencyKey: 'sku-3' } });
    expect(queued.status).toBe(202);

    const upload = { body: [{ prompt: 'Mug', size: '512*512' }, { prompt: 'Bowl', size: '512*512' }, { prompt: 'Cup', size: '512*512', idempotencyKey: 'sku-3' }], headers: { 'idempotency-key': 'upload-1' } };
    const first = await api.call('POST', '/v1/batches', upload);
    expect(first.status).toBe(202);
    expect(first.body).toMatchObject({ items: 3, enqueued: 2, alreadyQueued: 1 });
    expect(await producer.queue.count()).toBe(3);

    // As if the record had expired, or Redis had restarted without it.
    expect(await redis.del(apiIdempotencyKey(prefix, fingerprintOf('POST /v1/batches', 'upload-1')))).toBe(1);
    const retry = await api.call('POST', '/v1/batches', upload);
    expect(retry.status).toBe(202);
    expect(retry.body).toEqual(first.body);
    expect(retry.headers.get('idempotent-replayed')).toBe('true');
    expect(await producer.queue.count()).toBe(3);
    expect(await producer.getBatch(first.body.batchId)).toMatchObject({ total: 2 });
    expect(await redis.keys(`${prefix}:batch:*:jobs`)).toEqual([`${prefix}:batch:${first.body.batchId}:jobs`]);

    // The key reused for a different upload once its record is gone is a new batch, not the old one.
    expect(await redis.del(apiIdempotencyKey(prefix, fingerprintOf('POST /v1/batches', 'upload-1')))).toBe(1);
    const other = await api.call('POST', '/v1/batches', { ...upload, body: [{ prompt: 'Plate', size: '512*512' }] });
    expect(other.status).toBe(202);
    expect(other.body).toMatchObject({ items: 1, enqueued: 1 });
    expect(other.body.batchId).not.toBe(first.body.batchId);
  });
});
