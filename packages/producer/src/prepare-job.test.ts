import { describe, expect, it } from 'vitest';
import { parseStorageUrl, storageKeyLimits } from '@zimage/shared';
import {
  DEFAULT_BATCH_KEY_TEMPLATE,
  DEFAULT_KEY_TEMPLATE,
  idempotentJobId,
  prepareJob,
  stableStringify,
  type PrepareContext,
  type PrepareOutcome,
  type PreparedJob,
} from './prepare-job.js';

const NOW = Date.parse('2026-11-23T10:00:00Z');

function prepared(input: unknown, context: Partial<PrepareContext> = {}): PreparedJob {
  const outcome = prepareJob(input, { now: NOW, ...context });
  if (!outcome.ok) throw new Error(`expected a prepared job, got ${JSON.stringify(outcome.issues)}`);
  return outcome.job;
}

function issues(input: unknown, context: Partial<PrepareContext> = {}) {
  const outcome: PrepareOutcome = prepareJob(input, { now: NOW, ...context });
  if (outcome.ok) throw new Error('expected issues');
  return outcome.issues;
}

describe('prepareJob: size', () => {
  it.each([
    [{}, 1024, 1536],
    [{ size: '1280*720' }, 1280, 720],
    [{ aspect: '16:9', tier: '1024' }, 1280, 720],
    [{ aspect: '16:9' }, 1536, 864],
    [{ aspect: '1:1', tier: '1536' }, 1536, 1536],
  ])('turns %o into %i×%i', (fields, width, height) => {
    const { payload } = prepared({ prompt: 'a cat', ...fields });
    expect(payload).toMatchObject({ width, height });
  });
});

describe('prepareJob: payload', () => {
  it('stores the normalised request with defaults and context', () => {
    const job = prepared(
      { prompt: '  a cat  ', seed: 7, promptExtend: true, metadata: { sku: 'A1' }, deadline: '2026-11-24T06:00:00+08:00' },
      { line: 12, rowKey: 'A1' },
    );
    expect(job.payload).toMatchObject({
      v: 1,
      prompt: 'a cat',
      width: 1024,
      height: 1536,
      seed: 7,
      promptExtend: true,
      metadata: { sku: 'A1' },
      deadline: Date.parse('2026-11-23T22:00:00Z'),
      line: 12,
      rowKey: 'A1',
      createdAt: NOW,
    });
    expect(job.payload.requestHash).toMatch(/^[0-9a-f]{64}$/);
  });

  it('leaves out fields that were not given', () => {
    const { payload } = prepared({ prompt: 'a cat' });
    for (const field of ['seed', 'webhook', 'deadline', 'batchId', 'line', 'rowKey']) expect(payload).not.toHaveProperty(field);
    expect(payload.metadata).toEqual({});
    expect(payload.promptExtend).toBe(false);
  });

  it('returns validation issues with field paths instead of a job', () => {
    expect(issues({ prompt: '', seed: -1 }).map((i) => i.field).sort()).toEqual(['prompt', 'seed']);
  });
});

describe('prepareJob: object key', () => {
  it(`uses ${DEFAULT_KEY_TEMPLATE} for a single job`, () => {
    const job = prepared({ prompt: 'a cat' });
    expect(job.payload.key).toBe(`images/${job.jobId}.png`);
  });

  it(`uses ${DEFAULT_BATCH_KEY_TEMPLATE} in a batch`, () => {
    const job = prepared({ prompt: 'a cat' }, { batchId: 'b-42' });
    expect(job.payload.key).toBe(`b-42/${job.jobId}.png`);
    expect(job.payload.batchId).toBe('b-42');
  });

  it("uses the request's batchId when the context has none, and the context's when both are given", () => {
    expect(prepared({ prompt: 'a cat', batchId: 'from-request' }).payload.batchId).toBe('from-request');
    expect(prepared({ prompt: 'a cat', batchId: 'from-request' }, { batchId: 'from-context' }).payload.batchId).toBe('from-context');
  });

  it('fills a key template from metadata and the built-ins {id}, {batchId} and {date}', () => {
    const job = prepared({ prompt: 'a cat', key: 'catalogue/{date}/{batchId}/{sku}-{id}.png', metadata: { sku: 'SKU-1' } }, { batchId: 'b1' });
    expect(job.payload.key).toBe(`catalogue/2026-11-23/b1/SKU-1-${job.jobId}.png`);
  });

  it('fills a key template from template values (CSV columns) too, metadata winning', () => {
    const job = prepared(
      { prompt: 'a cat', key: '{brand}/{sku}.png', metadata: { sku: 'from-metadata' } },
      { templateValues: { brand: 'acme', sku: 'from-column' } },
    );
    expect(job.payload.key).toBe('acme/from-metadata.png');
  });

  it('does not let metadata override the built-in {id}', () => {
    const job = prepared({ prompt: 'a cat', key: 'x/{id}.png', metadata: { id: 'mine' } });
    expect(job.payload.key).toBe(`x/${job.jobId}.png`);
  });

  it('uses the UTC date of now for {date}', () => {
    const job = prepared({ prompt: 'a cat', key: '{date}/x.png' }, { now: Date.parse('2026-11-23T23:30:00-05:00') });
    expect(job.payload.key).toBe('2026-11-24/x.png');
  });

  it.each([
    ['a missing field', { key: 'catalogue/{sku}.png' }, /\{sku\}/],
    ['{batchId} outside a batch', { key: '{batchId}/x.png' }, /\{batchId\}/],
    ['a value with a slash', { key: 'catalogue/{sku}.png', metadata: { sku: '../../etc' } }, /\{sku\}/],
    ['a value with a backslash', { key: 'catalogue/{sku}.png', metadata: { sku: 'a\\b' } }, /\{sku\}/],
    ['a parent segment', { key: '../outside/{id}.png' }, /"\.\."/],
    ['an absolute key', { key: '/etc/{id}.png' }, /relative/],
    ['an empty segment', { key: 'a//{id}.png' }, /empty segments/],
  ])('reports %s on key', (_what, fields, message) => {
    const found = issues({ prompt: 'a cat', ...fields });
    expect(found).toEqual([{ field: 'key', message: expect.stringMatching(message) }]);
  });
});

describe('prepareJob: keys the store could not take', () => {
  // 86 CJK characters: 258 UTF-8 bytes, 262 with ".png", over the 255 a file name may have.
  const title = '手'.repeat(86);

  it('reports a rendered segment over 255 bytes on key, naming segment-too-long and its bytes, with no storage given', () => {
    const found = issues({ prompt: 'a cat', key: 'catalogue/{title}.png', metadata: { title } });
    expect(found).toEqual([{ field: 'key', message: expect.stringMatching(/segment 2 of 2 is 262 bytes\) \(rule segment-too-long\)$/) }]);
    expect(found[0]?.message).toContain('at most 255 UTF-8 bytes');
  });

  it('reports it for a CSV column filling the template too', () => {
    const found = issues({ prompt: 'a cat', key: 'catalogue/{title}.png' }, { templateValues: { title }, line: 3 });
    expect(found.map((i) => i.field)).toEqual(['key']);
    expect(found[0]?.message).toMatch(/rule segment-too-long/);
  });

  it('refuses a key that fits alone but not after the S3 prefix, naming the prefix and both byte counts', () => {
    const keyLimits = storageKeyLimits({ kind: 's3', bucket: 'bucket', prefix: 'p'.repeat(1000) });
    const key = 'catalogue/30-byte-key-abcd.png';
    expect(Buffer.byteLength(key)).toBe(30);
    expect(prepared({ prompt: 'a cat', key }).payload.key).toBe(key); // fine without the prefix
    const found = issues({ prompt: 'a cat', key }, { keyLimits });
    expect(found).toEqual([{ field: 'key', message: expect.stringContaining('is 30 UTF-8 bytes; this store takes at most 23') }]);
    expect(found[0]?.message).toMatch(/the STORAGE_URL prefix "p+…?" with its "\/" takes 1001 \(rule too-long\)$/);
  });

  it('accepts a key that fits with the prefix', () => {
    const keyLimits = storageKeyLimits(parseStorageUrl('s3://bucket/images'));
    expect(prepared({ prompt: 'a cat', key: 'catalogue/a.png' }, { keyLimits }).payload.key).toBe('catalogue/a.png');
  });
});

describe('prepareJob: deadline', () => {
  it('accepts a deadline in the future', () => {
    expect(prepared({ prompt: 'a cat', deadline: '2026-11-23T10:00:01Z' }).payload.deadline).toBe(NOW + 1000);
  });

  it.each(['2026-11-23T10:00:00Z', '2026-11-23T09:00:00Z', '2026-11-23T17:59:59+08:00'])('reports the past deadline %s on deadline', (deadline) => {
    expect(issues({ prompt: 'a cat', deadline })).toEqual([{ field: 'deadline', message: expect.stringContaining('in the past') }]);
  });

  it('reports a past deadline and a bad key together', () => {
    expect(issues({ prompt: 'a cat', deadline: '2020-01-01T00:00:00Z', key: '{nope}.png' }).map((i) => i.field)).toEqual(['deadline', 'key']);
  });
});

describe('prepareJob: ids and hashes', () => {
  it('gives a random id without an idempotency key', () => {
    const a = prepared({ prompt: 'a cat' });
    const b = prepared({ prompt: 'a cat' });
    expect(a.jobId).not.toBe(b.jobId);
    expect(a.idempotent).toBe(false);
  });

  it('derives a deterministic id from the idempotency key', () => {
    const a = prepared({ prompt: 'a cat', idempotencyKey: 'order-1' });
    const b = prepared({ prompt: 'a different cat', idempotencyKey: 'order-1' });
    const c = prepared({ prompt: 'a cat', idempotencyKey: 'order-2' });
    expect(a.jobId).toBe(b.jobId);
    expect(a.jobId).not.toBe(c.jobId);
    expect(a.jobId).toBe(idempotentJobId('order-1'));
    expect(a.jobId).toMatch(/^idem-[0-9a-f]{32}$/);
    expect(a.idempotent).toBe(true);
  });

  it('hashes the same request equally whatever the property order', () => {
    const a = prepared({ prompt: 'a cat', seed: 1, metadata: { a: '1', b: '2' }, idempotencyKey: 'k', priority: 5 });
    const b = prepared({ priority: 5, idempotencyKey: 'k', metadata: { b: '2', a: '1' }, seed: 1, prompt: 'a cat' });
    expect(a.payload.requestHash).toBe(b.payload.requestHash);
  });

  it('hashes a repeat on another day equally, though {date} renders differently', () => {
    const input = { prompt: 'a cat', key: '{date}/{id}.png', idempotencyKey: 'k' };
    const today = prepared(input);
    const tomorrow = prepared(input, { now: NOW + 86_400_000 });
    expect(today.payload.key).not.toBe(tomorrow.payload.key);
    expect(today.payload.requestHash).toBe(tomorrow.payload.requestHash);
  });

  it.each([
    ['prompt', { prompt: 'a dog' }],
    ['seed', { seed: 2 }],
    ['size', { size: '1024*1024' }],
    ['promptExtend', { promptExtend: true }],
    ['metadata', { metadata: { a: 'x' } }],
    ['key', { key: 'other/{id}.png' }],
    ['webhook', { webhook: { url: 'https://hooks.example.com' } }],
  ])('hashes a request with a different %s differently', (_field, change) => {
    const base = { prompt: 'a cat', seed: 1, idempotencyKey: 'k' };
    expect(prepared({ ...base, ...change }).payload.requestHash).not.toBe(prepared(base).payload.requestHash);
  });
});

describe('prepareJob: priority', () => {
  it.each([
    [100, 1],
    [50, 51],
    [0, 101],
    [undefined, 101],
  ])('maps priority %s to BullMQ priority %i (1 is served first)', (priority, bullPriority) => {
    expect(prepared({ prompt: 'a cat', priority }).bullPriority).toBe(bullPriority);
  });
});

describe('stableStringify', () => {
  it('sorts object keys at every depth', () => {
    expect(stableStringify({ b: 1, a: { d: [{ z: 1, y: 2 }], c: 'x' } })).toBe('{"a":{"c":"x","d":[{"y":2,"z":1}]},"b":1}');
  });

  it('gives equal text for objects that differ only in key order', () => {
    expect(stableStringify({ x: 1, y: { p: true, q: null } })).toBe(stableStringify({ y: { q: null, p: true }, x: 1 }));
  });

  it('keeps array order', () => {
    expect(stableStringify([3, 1, 2])).toBe('[3,1,2]');
  });

  it('leaves out undefined properties, like JSON.stringify', () => {
    expect(stableStringify({ a: undefined, b: 1 })).toBe('{"b":1}');
    expect(stableStringify({ a: undefined, b: 1 })).toBe(JSON.stringify({ b: 1 }));
  });

  it('quotes strings and keys as JSON', () => {
    expect(stableStringify({ 'k"ey': 'v"al\n' })).toBe('{"k\\"ey":"v\\"al\\n"}');
    expect(JSON.parse(stableStringify({ 'k"ey': 'v"al\n' }))).toEqual({ 'k"ey': 'v"al\n' });
  });
});

describe('prepareJob: render cache', () => {
  it('stores the cache options on a seeded request without promptExtend, with the defaults filled in', () => {
    expect(prepared({ prompt: 'a vase', seed: 7, cache: true }).payload.cache).toEqual({ namespace: 'default', ttlMs: 30 * 86_400_000 });
    expect(prepared({ prompt: 'a vase', seed: 7, cache: true, cacheNamespace: 'spring', cacheTtl: '12h', cacheRefresh: true }).payload.cache).toEqual({
      namespace: 'spring',
      ttlMs: 12 * 3_600_000,
      refresh: true,
    });
    expect(prepared({ prompt: 'a vase', seed: 7 }).payload.cache).toBeUndefined();
  });

  it('refuses cache on a request whose image it does not determine, saying why', () => {
    expect(issues({ prompt: 'a vase', cache: true })).toEqual([{ field: 'cache', message: expect.stringContaining('needs a seed') }]);
    expect(issues({ prompt: 'a vase', seed: 7, promptExtend: true, cache: true })).toEqual([{ field: 'cache', message: expect.stringContaining('needs promptExtend: false') }]);
  });

  it.each([
    [{ cacheNamespace: 'spring' }, 'cacheNamespace', 'goes with cache: true'],
    [{ cacheRefresh: true }, 'cacheRefresh', 'goes with cache: true'],
    [{ cache: true, cacheTtl: '30s' }, 'cacheTtl', 'from 1m to 365d'],
    [{ cache: true, cacheTtl: '400d' }, 'cacheTtl', 'from 1m to 365d'],
    [{ cache: true, cacheTtl: 'a month' }, 'cacheTtl', 'from 1m to 365d'],
    [{ cache: true, cacheNamespace: 'no spaces' }, 'cacheNamespace', 'must match'],
  ])('refuses %o on %s', (fields, field, message) => {
    expect(issues({ prompt: 'a vase', seed: 7, ...fields })).toEqual([{ field, message: expect.stringContaining(message) }]);
  });

  it('leaves the request hash of a request without cache options as it was', () => {
    const before = prepared({ prompt: 'a vase', seed: 7 }).payload.requestHash;
    expect(prepared({ prompt: 'a vase', seed: 7, cache: false }).payload.requestHash).toBe(before);
    expect(prepared({ prompt: 'a vase', seed: 7, cache: true }).payload.requestHash).not.toBe(before);
  });
});
