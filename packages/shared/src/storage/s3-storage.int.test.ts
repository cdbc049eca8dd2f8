import { createHash, randomBytes, randomUUID } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { Readable } from 'node:stream';
import { inspect } from 'node:util';
import { GetObjectCommand, HeadObjectCommand, ListObjectsV2Command, PutObjectCommand, S3Client } from '@aws-sdk/client-s3';
import S3rver from 's3rver';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { isAppError } from '../errors.js';
import type { AppError } from '../errors.js';
import { createStorage } from './create-storage.js';
import { createS3Client } from './s3-client.js';
import type { Storage, StorageConfig } from './storage.js';

const BUCKET = 'images';
const sha256 = (bytes: Uint8Array): string => createHash('sha256').update(bytes).digest('hex');

interface RunningS3rver {
  endpoint: string;
  stop(): Promise<void>;
}

async function startS3rver(): Promise<RunningS3rver> {
  const directory = await mkdtemp(path.join(tmpdir(), 'zimage-s3rver-'));
  const server = new S3rver({ port: 0, address: '127.0.0.1', silent: true, directory, configureBuckets: [{ name: BUCKET }] });
  const { port } = await server.run();
  let stopped = false;
  return {
    endpoint: `http://127.0.0.1:${port}`,
    async stop() {
      if (stopped) return;
      stopped = true;
      await server.close();
      await rm(directory, { recursive: true, force: true });
    },
  };
}

async function caught(action: () => unknown): Promise<AppError> {
  try {
    await action();
  } catch (error) {
    if (isAppError(error)) return error;
    throw error;
  }
  throw new Error('expected an AppError, but nothing was thrown');
}

describe('s3 storage against s3rver', () => {
  let server: RunningS3rver;
  let s3: NonNullable<StorageConfig['s3']>;
  /** An independent client, so assertions do not go through the code under test. */
  let plain: S3Client;
  const opened: Storage[] = [];

  const open = (url: string, overrides: Partial<NonNullable<StorageConfig['s3']>> = {}): Storage => {
    const storage = createStorage({ url, s3: { ...s3, ...overrides } });
    opened.push(storage);
    return storage;
  };
  /** Each test writes under its own folder so tests do not see each other's objects. */
  const scope = (): string => `t-${randomUUID()}`;

  const getObject = async (key: string) => {
    const response = await plain.send(new GetObjectCommand({ Bucket: BUCKET, Key: key }));
    const bytes = response.Body === undefined ? new Uint8Array() : await response.Body.transformToByteArray();
    return { response, bytes };
  };

  beforeAll(async () => {
    server = await startS3rver();
    s3 = { region: 'us-east-1', endpoint: server.endpoint, forcePathStyle: true, accessKeyId: 'S3RVER', secretAccessKey: 'S3RVER' };
    plain = new S3Client({
      region: 'us-east-1',
      endpoint: server.endpoint,
      forcePathStyle: true,
      credentials: { accessKeyId: 'S3RVER', secretAccessKey: 'S3RVER' },
      requestChecksumCalculation: 'WHEN_REQUIRED',
      responseChecksumValidation: 'WHEN_REQUIRED',
    });
  });

  afterAll(async () => {
    await Promise.all(opened.map((storage) => storage.close()));
    plain?.destroy();
    await server?.stop();
  });

  it('stores the exact bytes as image/png with the sha256 in the metadata', async () => {
    const storage = open(`s3://${BUCKET}`);
    const key = `${scope()}/sku-1.png`;
    const body = new Uint8Array(randomBytes(64 * 1024));

    const stored = await storage.put({ key, body, sha256: sha256(body), metadata: { sku: 'SKU-1' } });

    expect(stored).toEqual({ key, url: `s3://${BUCKET}/${key}`, bytes: body.byteLength, sha256: sha256(body), skipped: false });
    const { response, bytes } = await getObject(key);
    expect(bytes).toEqual(body);
    expect(response.ContentType).toBe('image/png');
    expect(response.ContentLength).toBe(body.byteLength);
    expect(response.Metadata).toEqual({ sku: 'SKU-1', sha256: sha256(body) });
  });

  it('stores a 6 MB body byte for byte (multipart, no aws-chunked framing)', { timeout: 60_000 }, async () => {
    const storage = open(`s3://${BUCKET}`);
    const key = `${scope()}/large.png`;
    const body = new Uint8Array(randomBytes(6 * 1024 * 1024 + 123));

    await storage.put({ key, body, sha256: sha256(body) });

    const { response, bytes } = await getObject(key);
    expect(response.ContentLength).toBe(body.byteLength);
    expect(sha256(bytes)).toBe(sha256(body));
    expect(response.Metadata?.['sha256']).toBe(sha256(body));
    expect((await storage.read(key))?.byteLength).toBe(body.byteLength);
  });

  it('builds clients whose streamed uploads are stored without aws-chunked framing', async () => {
    // With the SDK's default checksum settings a stream body goes out aws-chunked and s3rver keeps
    // the chunk framing as object bytes (reference/toolchain.md). The driver uploads Buffers today;
    // this guards the client settings for any stream upload added later.
    const client = createS3Client(s3);
    try {
      expect(await client.config.requestChecksumCalculation()).toBe('WHEN_REQUIRED');
      expect(await client.config.responseChecksumValidation()).toBe('WHEN_REQUIRED');
      const key = `${scope()}/streamed.png`;
      const body = randomBytes(256 * 1024);
      await client.send(new PutObjectCommand({ Bucket: BUCKET, Key: key, Body: Readable.from([body]), ContentLength: body.byteLength }));
      const { bytes } = await getObject(key);
      expect(bytes.byteLength).toBe(body.byteLength);
      expect(sha256(bytes)).toBe(sha256(body));
    } finally {
      client.destroy();
    }
  });

  it('round-trips job metadata, including Chinese text, through head', async () => {
    const storage = open(`s3://${BUCKET}`);
    const key = `${scope()}/meta.png`;
    const body = new Uint8Array(randomBytes(1000));
    const metadata = { Title: '红色手机壳 (iPhone 15) 100%', sku: 'A-1', note: ' padded ', marker: 'pct-utf8:literal' };

    await storage.put({ key, body, sha256: sha256(body), metadata });

    expect(await storage.head(key)).toEqual({
      key,
      bytes: body.byteLength,
      sha256: sha256(body),
      metadata: { title: '红色手机壳 (iPhone 15) 100%', sku: 'A-1', note: ' padded ', marker: 'pct-utf8:literal' },
    });
    // What other tools see: lowercased keys and header-safe ASCII values.
    const raw = (await plain.send(new HeadObjectCommand({ Bucket: BUCKET, Key: key }))).Metadata ?? {};
    expect(raw['title']).toBe('pct-utf8:%E7%BA%A2%E8%89%B2%E6%89%8B%E6%9C%BA%E5%A3%B3%20(iPhone%2015)%20100%25');
    expect(Object.values(raw).every((value) => /^[\x20-\x7e]*$/.test(value))).toBe(true);
  });

  it('skips the upload when an object with the same sha256 is already there', async () => {
    // A counting client: proves the second put sent no upload request at all.
    const client = createS3Client(s3);
    const commands: string[] = [];
    client.middlewareStack.add(
      (next, context) => (args) => {
        commands.push(String(context.commandName));
        return next(args);
      },
      { step: 'initialize' },
    );
    const storage = createStorage({ url: `s3://${BUCKET}` }, { s3Client: client });
    const key = `${scope()}/same.png`;
    const body = new Uint8Array(randomBytes(2048));

    const first = await storage.put({ key, body, sha256: sha256(body) });
    const before = await plain.send(new HeadObjectCommand({ Bucket: BUCKET, Key: key }));
    commands.length = 0;
    const second = await storage.put({ key, body, sha256: sha256(body), metadata: { other: 'ignored on skip' } });
    const after = await plain.send(new HeadObjectCommand({ Bucket: BUCKET, Key: key }));

    expect(first.skipped).toBe(false);
    expect(second).toEqual({ ...first, skipped: true });
    expect(commands).toEqual(['HeadObjectCommand']);
    expect(after.LastModified).toEqual(before.LastModified);
    expect(after.ETag).toBe(before.ETag);

    // Different bytes under the same key are written.
    const changed = new Uint8Array(randomBytes(2048));
    commands.length = 0;
    expect((await storage.put({ key, body: changed, sha256: sha256(changed) })).skipped).toBe(false);
    expect(commands).toContain('PutObjectCommand');
    expect((await getObject(key)).bytes).toEqual(changed);

    // An injected client belongs to the caller: close() must not destroy it.
    let destroyed = 0;
    const destroy = client.destroy.bind(client);
    client.destroy = () => {
      destroyed += 1;
      destroy();
    };
    await storage.close();
    await storage.close();
    expect(destroyed).toBe(0);
    await expect(client.send(new HeadObjectCommand({ Bucket: BUCKET, Key: key }))).resolves.toBeDefined();
    client.destroy();
  });

  it('overwrites an object that has no sha256 metadata (written by something else)', async () => {
    const storage = open(`s3://${BUCKET}`);
    const key = `${scope()}/foreign.png`;
    const body = new Uint8Array(randomBytes(100));
    await plain.send(new PutObjectCommand({ Bucket: BUCKET, Key: key, Body: body }));

    const stored = await storage.put({ key, body, sha256: sha256(body) });

    expect(stored.skipped).toBe(false);
    expect((await storage.head(key))?.sha256).toBe(sha256(body));
  });

  it('joins the prefix and the key with exactly one slash', async () => {
    const folder = scope();
    const storage = open(`s3://${BUCKET}/${folder}/some/prefix/`);
    const body = new Uint8Array(randomBytes(10));

    expect(storage.description).toBe(`s3://${BUCKET}/${folder}/some/prefix`);
    expect(storage.urlFor('a/b.png')).toBe(`s3://${BUCKET}/${folder}/some/prefix/a/b.png`);
    const stored = await storage.put({ key: 'a/b.png', body, sha256: sha256(body) });
    expect(stored.url).toBe(`s3://${BUCKET}/${folder}/some/prefix/a/b.png`);

    const listed = await plain.send(new ListObjectsV2Command({ Bucket: BUCKET, Prefix: folder }));
    expect(listed.Contents?.map((object) => object.Key)).toEqual([`${folder}/some/prefix/a/b.png`]);
    expect((await storage.read('a/b.png')) ?? []).toEqual(body);
    expect(await storage.head('b.png')).toBeNull();

    // Without a prefix the key is used as is (no leading slash).
    const bare = open(`s3://${BUCKET}`);
    expect(bare.description).toBe(`s3://${BUCKET}`);
    expect((await bare.read(`${folder}/some/prefix/a/b.png`)) ?? []).toEqual(body);
  });

  it('returns null from head and read for a missing key', async () => {
    const storage = open(`s3://${BUCKET}`);
    expect(await storage.head(`${scope()}/missing.png`)).toBeNull();
    expect(await storage.read(`${scope()}/missing.png`)).toBeNull();
  });

  it('refuses unsafe keys before any request', async () => {
    const storage = open(`s3://${BUCKET}/p`);
    const body = new Uint8Array([1]);
    for (const key of ['../x.png', '/abs.png', 'a//b.png', 'a\\b.png']) {
      expect((await caught(() => storage.put({ key, body, sha256: sha256(body) }))).code).toBe('STORAGE_KEY_INVALID');
      expect((await caught(() => storage.head(key))).code).toBe('STORAGE_KEY_INVALID');
      expect((await caught(() => storage.read(key))).code).toBe('STORAGE_KEY_INVALID');
      expect((await caught(() => storage.urlFor(key))).code).toBe('STORAGE_KEY_INVALID');
    }
    // The prefix counts against S3's 1024-byte key limit.
    const long = open(`s3://${BUCKET}/${'p'.repeat(100)}`);
    // (Segments stay under 255 bytes, so the total is what breaks: 953 bytes, 1054 with the prefix.)
    expect((await caught(() => long.urlFor([250, 250, 250, 200].map((n) => 'k'.repeat(n)).join('/')))).details['rule']).toBe('too-long');
  });

  it('probeWrite() writes and removes a probe object, and fails with STORAGE_REFUSED on a missing bucket', async () => {
    const folder = scope();
    await open(`s3://${BUCKET}/${folder}`).probeWrite();
    const listed = await plain.send(new ListObjectsV2Command({ Bucket: BUCKET, Prefix: `${folder}/` }));
    expect(listed.KeyCount ?? 0).toBe(0);
    expect((await caught(() => open('s3://no-such-bucket').probeWrite())).code).toBe('STORAGE_REFUSED');
  });

  it('check() passes when the bucket is reachable and fails with STORAGE_UNAVAILABLE when it is missing', async () => {
    await open(`s3://${BUCKET}/any/prefix`).check();

    const error = await caught(() => open('s3://no-such-bucket').check());
    expect(error.code).toBe('STORAGE_UNAVAILABLE');
    expect(error.retry).toBe('transient');
    expect(error.message).toContain('s3://no-such-bucket');
    expect(error.message).toContain('does not exist');
    expect(error.details['httpStatus']).toBe(404);
    expect(error.cause).toBeDefined();
  });

  it('keeps the secret out of every error, whatever fails', { timeout: 60_000 }, async () => {
    // s3rver accepts any secret for the S3RVER key and refuses unknown keys, so both a valid-key
    // failure (missing bucket) and an authentication failure are exercised.
    const secret = 'fake-secret-7Hq2LmZx9WvB4nKt';
    const missingBucket = open('s3://no-such-bucket', { secretAccessKey: secret });
    const badKey = open(`s3://${BUCKET}`, { accessKeyId: 'NOT-A-KNOWN-KEY', secretAccessKey: secret });
    const body = new Uint8Array([1, 2, 3]);

    const errors = [
      await caught(() => missingBucket.check()),
      await caught(() => missingBucket.put({ key: 'x.png', body, sha256: sha256(body) })),
      await caught(() => badKey.check()),
      await caught(() => badKey.put({ key: 'x.png', body, sha256: sha256(body) })),
      await caught(() => badKey.read('x.png')),
    ];

    // A write refused for every key (no such bucket, unknown credentials) is STORAGE_REFUSED: the
    // worker stops the fleet on it instead of retrying job by job.
    expect(errors.map((error) => error.code)).toEqual([
      'STORAGE_UNAVAILABLE',
      'STORAGE_REFUSED',
      'STORAGE_UNAVAILABLE',
      'STORAGE_REFUSED',
      'STORAGE_UNAVAILABLE',
    ]);
    expect(errors[2]?.message).toContain('access denied');
    for (const error of errors) {
      expect(error.message).not.toContain(secret);
      expect(JSON.stringify(error)).not.toContain(secret);
      expect(inspect(error, { depth: 8 })).not.toContain(secret); // includes the SDK error as cause
    }
  });

  it('fails with STORAGE_UNAVAILABLE / STORAGE_WRITE_FAILED when the server is gone', { timeout: 60_000 }, async () => {
    const doomed = await startS3rver();
    const storage = createStorage({ url: `s3://${BUCKET}`, s3: { ...s3, endpoint: doomed.endpoint } });
    opened.push(storage);
    await storage.check();
    await doomed.stop();

    const body = new Uint8Array([1]);
    const check = await caught(() => storage.check());
    expect(check.code).toBe('STORAGE_UNAVAILABLE');
    expect(check.message).toMatch(/ECONNREFUSED/);
    expect((await caught(() => storage.head('x.png'))).code).toBe('STORAGE_UNAVAILABLE');
    expect((await caught(() => storage.read('x.png'))).code).toBe('STORAGE_UNAVAILABLE');
    expect((await caught(() => storage.put({ key: 'x.png', body, sha256: sha256(body) }))).code).toBe('STORAGE_WRITE_FAILED');
  });
});
