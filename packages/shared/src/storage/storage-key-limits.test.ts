import { createHash } from 'node:crypto';
import { mkdir, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { type AppError, isAppError } from '../errors.js';
import { createFileStorage } from './file-storage.js';
import { MAX_OBJECT_KEY_BYTES } from './object-key.js';
import { assertKeyFitsStorage, MAX_FILE_PATH_BYTES, storageKeyLimits } from './storage-key-limits.js';
import { parseStorageUrl } from './storage-url.js';

function thrown(run: () => unknown): AppError {
  try {
    run();
  } catch (error) {
    if (isAppError(error)) return error;
    throw error;
  }
  throw new Error('expected an AppError');
}

describe('storageKeyLimits: s3', () => {
  it('leaves S3 its whole 1024 bytes without a prefix', () => {
    expect(storageKeyLimits(parseStorageUrl('s3://bucket')).maxKeyBytes).toBe(MAX_OBJECT_KEY_BYTES);
  });

  it('takes the prefix and its "/" from the 1024 bytes, counting UTF-8 bytes', () => {
    expect(storageKeyLimits(parseStorageUrl('s3://bucket/images/')).maxKeyBytes).toBe(1024 - 7);
    expect(storageKeyLimits(parseStorageUrl('s3://bucket/图片')).maxKeyBytes).toBe(1024 - 7);
  });

  it('refuses a key that fits alone but not after the prefix, naming the prefix, the rule and both byte counts', () => {
    const limits = storageKeyLimits({ kind: 's3', bucket: 'bucket', prefix: 'p'.repeat(1000) });
    expect(limits.maxKeyBytes).toBe(23);
    const key = 'catalogue/0123456789abcd.png'.padEnd(30, 'x');
    const error = thrown(() => assertKeyFitsStorage(key, limits));
    expect(error.code).toBe('STORAGE_KEY_INVALID');
    expect(error.details).toMatchObject({ rule: 'too-long', bytes: 30, maxKeyBytes: 23 });
    expect(error.message).toContain('is 30 UTF-8 bytes; this store takes at most 23');
    expect(error.message).toContain('S3 allows 1024 bytes for a whole key, and the STORAGE_URL prefix "pppp');
    expect(error.message).toContain('with its "/" takes 1001 (rule too-long)');
    expect(assertKeyFitsStorage('x'.repeat(23), limits)).toBe('x'.repeat(23));
  });

  it('agrees with the S3 driver at the boundary: prefix + "/" + key of exactly 1024 bytes fits', () => {
    const prefix = 'p'.repeat(512); // the longest prefix STORAGE_URL accepts
    const limits = storageKeyLimits(parseStorageUrl(`s3://bucket/${prefix}`));
    const fits = 'k'.repeat(1024 - 513);
    expect(Buffer.byteLength(`${prefix}/${fits}`)).toBe(1024);
    expect(assertKeyFitsStorage(fits, limits)).toBe(fits);
    expect(() => assertKeyFitsStorage(`${fits}k`, limits)).toThrow(/is 512 UTF-8 bytes; this store takes at most 511/);
  });
});

describe('storageKeyLimits: file', () => {
  it('leaves a short folder the full 1024 bytes (PATH_MAX is far off)', () => {
    expect(storageKeyLimits(parseStorageUrl('file:/srv/zimage/output')).maxKeyBytes).toBe(MAX_OBJECT_KEY_BYTES);
  });

  it('resolves a relative folder against the working directory given, as the file driver does', () => {
    const cwd = `/${'d'.repeat(3200)}`;
    const limits = storageKeyLimits(parseStorageUrl('file:./output'), cwd);
    const root = path.resolve(cwd, 'output');
    // The temp file `.{name}.{12 hex}.tmp` beside the object is 18 bytes longer than its path.
    expect(limits.maxKeyBytes).toBe(MAX_FILE_PATH_BYTES - Buffer.byteLength(root) - 1 - 18);
    expect(limits.rule).toBe('path-too-long');
  });

  it('refuses a key whose path under a deep folder would pass PATH_MAX, naming the folder', () => {
    const root = `/${'d'.repeat(3500)}`;
    const limits = storageKeyLimits({ kind: 'file', dir: root });
    const error = thrown(() => assertKeyFitsStorage('x'.repeat(600), limits));
    expect(error.details).toMatchObject({ rule: 'path-too-long', bytes: 600, maxKeyBytes: 4095 - 3501 - 1 - 18 });
    expect(error.message).toMatch(/a path may have 4095 bytes \(Linux PATH_MAX\), and the STORAGE_URL folder "\/ddd/);
    expect(error.message).toContain('(3501 bytes)');
  });

  it('refuses at configuration a folder that leaves no room for any key, naming STORAGE_URL', () => {
    const error = thrown(() => storageKeyLimits({ kind: 'file', dir: `/${'d'.repeat(4080)}` }));
    expect(error.code).toBe('CONFIG_INVALID');
    expect(error.details).toMatchObject({ variable: 'STORAGE_URL', rule: 'no-room-for-keys' });
  });
});

/** `total` bytes of key in segments of at most 200 bytes (the segment rule is not what is tested here). */
function keyOfBytes(total: number): string {
  const segments: string[] = [];
  for (let left = total; left > 0; left -= 201) segments.push('k'.repeat(Math.min(200, left)));
  const key = segments.join('/');
  // A trailing segment of 0 would end in "/": pad the last one instead.
  return Buffer.byteLength(key) === total ? key : `${key}k`;
}

describe.runIf(process.platform === 'linux')('storageKeyLimits: file, against the real file driver', () => {
  it('accepts the longest key the file driver can write and refuses the first it cannot', async () => {
    const sandbox = await mkdtemp(path.join(tmpdir(), 'zimage-limits-'));
    try {
      // A folder deep enough that PATH_MAX, not the 1024-byte key limit, is what binds.
      let root = sandbox;
      while (Buffer.byteLength(root) < 3400) root = path.join(root, 'f'.repeat(200));
      await mkdir(root, { recursive: true });
      const limits = storageKeyLimits({ kind: 'file', dir: root });
      expect(limits.maxKeyBytes).toBeLessThan(MAX_OBJECT_KEY_BYTES);
      const storage = createFileStorage({ dir: root });
      const body = new Uint8Array([1, 2, 3]);
      const sha256 = createHash('sha256').update(body).digest('hex');

      const longest = keyOfBytes(limits.maxKeyBytes);
      expect(Buffer.byteLength(longest)).toBe(limits.maxKeyBytes);
      expect(assertKeyFitsStorage(longest, limits)).toBe(longest);
      await storage.put({ key: longest, body, sha256 });

      // One byte more: the object's own path would still fit, its temp file's does not.
      const tooLong = keyOfBytes(limits.maxKeyBytes + 1);
      expect(() => assertKeyFitsStorage(tooLong, limits)).toThrow(/rule path-too-long/);
      const error = await storage.put({ key: tooLong, body, sha256 }).then(
        () => undefined,
        (e: unknown) => e,
      );
      expect(isAppError(error) && error.details['errno']).toBe('ENAMETOOLONG');
    } finally {
      await rm(sandbox, { recursive: true, force: true });
    }
  });
});
