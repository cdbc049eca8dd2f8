import { createHash } from 'node:crypto';
import { mkdtemp, readdir, readFile, rm, stat, symlink, writeFile, mkdir } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { isAppError } from '../errors.js';
import type { AppError } from '../errors.js';
import { resolveContainedPath } from './contained-path.js';
import { createStorage } from './create-storage.js';
import type { Storage } from './storage.js';
import { parseStorageUrl } from './storage-url.js';

const sha256 = (bytes: Uint8Array): string => createHash('sha256').update(bytes).digest('hex');
const bytesOf = (text: string): Uint8Array => new TextEncoder().encode(text);

async function caught(action: () => unknown): Promise<AppError> {
  try {
    await action();
  } catch (error) {
    if (isAppError(error)) return error;
    throw error;
  }
  throw new Error('expected an AppError, but nothing was thrown');
}

/** Every file under `dir`, relative, sorted; temp files included so leftovers are visible. */
async function listFiles(dir: string): Promise<string[]> {
  const entries = await readdir(dir, { recursive: true, withFileTypes: true });
  return entries
    .filter((entry) => entry.isFile())
    .map((entry) => path.relative(dir, path.join(entry.parentPath, entry.name)))
    .sort();
}

describe('file storage', () => {
  let sandbox: string;
  let root: string;
  let storage: Storage;

  beforeEach(async () => {
    sandbox = await mkdtemp(path.join(tmpdir(), 'zimage-file-storage-'));
    root = path.join(sandbox, 'output');
    storage = createStorage({ url: `file:${root}` });
  });

  afterEach(async () => {
    await storage.close();
    await rm(sandbox, { recursive: true, force: true });
  });

  it('probeWrite() creates the folder, writes a probe file and removes it again', async () => {
    await storage.probeWrite();
    expect(await readdir(root)).toEqual([]);
  });

  it('probeWrite() fails with STORAGE_WRITE_FAILED naming the folder when it cannot be a folder', async () => {
    await writeFile(path.join(sandbox, 'file'), 'x');
    const blocked = createStorage({ url: `file:${path.join(sandbox, 'file', 'out')}` });
    await expect(blocked.probeWrite()).rejects.toMatchObject({ code: 'STORAGE_WRITE_FAILED', message: expect.stringContaining('file/out') });
  });

  it('copy() copies a stored object to a new key, and skips a key that already holds it', async () => {
    const body = bytesOf('the image');
    await storage.put({ key: 'a/one.png', body, sha256: sha256(body) });
    expect(await storage.copy({ from: 'a/one.png', key: 'b/two.png', sha256: sha256(body) })).toMatchObject({ key: 'b/two.png', bytes: body.byteLength, skipped: false });
    expect(await readFile(path.join(root, 'b/two.png'), 'utf8')).toBe('the image');
    expect(await storage.copy({ from: 'a/one.png', key: 'b/two.png', sha256: sha256(body) })).toMatchObject({ skipped: true });
    expect(await listFiles(root)).toEqual(['a/one.png', 'b/two.png']);
  });

  it('copy() is null, and writes nothing, when the source is gone or holds other bytes', async () => {
    const body = bytesOf('the image');
    expect(await storage.copy({ from: 'gone.png', key: 'new.png', sha256: sha256(body) })).toBeNull();
    await storage.put({ key: 'changed.png', body: bytesOf('other'), sha256: sha256(bytesOf('other')) });
    expect(await storage.copy({ from: 'changed.png', key: 'new.png', sha256: sha256(body) })).toBeNull();
    expect(await listFiles(root)).toEqual(['changed.png']);
  });

  it('describes itself with the absolute folder', () => {
    expect(storage.kind).toBe('file');
    expect(storage.description).toBe(`file:${root}`);
  });

  it('writes the exact bytes into nested folders and leaves no temp files', async () => {
    const body = new Uint8Array(256 * 1024).map((_, i) => (i * 7) % 256);
    const stored = await storage.put({ key: 'catalogue/red/sku-1.png', body, sha256: sha256(body) });

    const target = path.join(root, 'catalogue', 'red', 'sku-1.png');
    expect(stored).toEqual({
      key: 'catalogue/red/sku-1.png',
      url: pathToFileURL(target).href,
      bytes: body.byteLength,
      sha256: sha256(body),
      skipped: false,
    });
    expect(new Uint8Array(await readFile(target))).toEqual(body);
    expect(await listFiles(sandbox)).toEqual([path.join('output', 'catalogue', 'red', 'sku-1.png')]);
  });

  it('writes a body that is a view into a larger buffer without the surrounding bytes', async () => {
    const backing = bytesOf('XXXXhelloYYYY');
    const body = backing.subarray(4, 9);
    await storage.put({ key: 'view.png', body, sha256: sha256(body) });
    expect(await readFile(path.join(root, 'view.png'), 'utf8')).toBe('hello');
  });

  it('skips the write when the same bytes are already stored (mtime unchanged)', async () => {
    const body = bytesOf('same image');
    const first = await storage.put({ key: 'a/same.png', body, sha256: sha256(body) });
    const target = path.join(root, 'a', 'same.png');
    const before = await stat(target);
    await new Promise((resolve) => setTimeout(resolve, 30));

    const second = await storage.put({ key: 'a/same.png', body, sha256: sha256(body) });

    expect(first.skipped).toBe(false);
    expect(second).toEqual({ ...first, skipped: true });
    const after = await stat(target);
    expect(after.mtimeMs).toBe(before.mtimeMs);
    expect(after.ino).toBe(before.ino); // not replaced by a rename either
  });

  it('overwrites atomically when different bytes are stored under the key', async () => {
    const old = bytesOf('old image bytes');
    const fresh = bytesOf('new, longer image bytes');
    await storage.put({ key: 'x.png', body: old, sha256: sha256(old) });
    const before = await stat(path.join(root, 'x.png'));

    const stored = await storage.put({ key: 'x.png', body: fresh, sha256: sha256(fresh) });

    expect(stored.skipped).toBe(false);
    expect(await readFile(path.join(root, 'x.png'), 'utf8')).toBe('new, longer image bytes');
    // A rename installs a new inode; an in-place rewrite would keep the old one.
    expect((await stat(path.join(root, 'x.png'))).ino).not.toBe(before.ino);
    expect(await listFiles(root)).toEqual(['x.png']);
  });

  it('does not skip when the sha256 matches nothing on disk even if the size matches', async () => {
    const one = bytesOf('aaaa');
    const two = bytesOf('bbbb');
    await storage.put({ key: 'same-size.png', body: one, sha256: sha256(one) });
    const stored = await storage.put({ key: 'same-size.png', body: two, sha256: sha256(two) });
    expect(stored.skipped).toBe(false);
    expect(await readFile(path.join(root, 'same-size.png'), 'utf8')).toBe('bbbb');
  });

  it('head returns size and a sha256 computed from the bytes, and null when missing', async () => {
    const body = bytesOf('head me');
    await storage.put({ key: 'h/one.png', body, sha256: 'f'.repeat(64), metadata: { sku: '1' } });

    // The digest comes from the file, not from what the caller claimed at put time.
    expect(await storage.head('h/one.png')).toEqual({ key: 'h/one.png', bytes: body.byteLength, sha256: sha256(body), metadata: {} });
    expect(await storage.head('h/missing.png')).toBeNull();
    expect(await storage.head('h')).toBeNull(); // a folder is not an object
    expect(await storage.head('h/one.png/below')).toBeNull(); // a parent that is a file
  });

  it('read returns the bytes as a Uint8Array, and null when missing', async () => {
    const body = bytesOf('read me');
    await storage.put({ key: 'r.png', body, sha256: sha256(body) });
    const read = await storage.read('r.png');
    expect(read).toBeInstanceOf(Uint8Array);
    expect(Buffer.isBuffer(read)).toBe(false);
    expect(read).toEqual(body);
    expect(await storage.read('nope/r.png')).toBeNull();
    expect(await storage.read('nope')).toBeNull();
  });

  it('urlFor gives a file:// URL under the folder, percent-encoded', () => {
    expect(storage.urlFor('a/b c.png')).toBe(pathToFileURL(path.join(root, 'a', 'b c.png')).href);
    expect(storage.urlFor('a/b c.png')).toMatch(/^file:\/\/\/.*\/output\/a\/b%20c\.png$/);
  });

  it.each(['../escape.png', 'a/../../escape.png', '/tmp/escape.png', 'a\\..\\..\\escape.png', 'C:/escape.png', 'a\u0000.png'])(
    'refuses key %j on every method and writes nothing',
    async (key) => {
      const body = bytesOf('evil');
      const put = await caught(() => storage.put({ key, body, sha256: sha256(body) }));
      expect(put.code).toBe('STORAGE_KEY_INVALID');
      expect((await caught(() => storage.head(key))).code).toBe('STORAGE_KEY_INVALID');
      expect((await caught(() => storage.read(key))).code).toBe('STORAGE_KEY_INVALID');
      expect((await caught(() => storage.urlFor(key))).code).toBe('STORAGE_KEY_INVALID');
      expect(await listFiles(sandbox)).toEqual([]);
    },
  );

  it('reports a key that collides with an existing folder as a key error, not a retryable write failure', async () => {
    const body = bytesOf('x');
    await storage.put({ key: 'dir/inner.png', body, sha256: sha256(body) });
    const error = await caught(() => storage.put({ key: 'dir', body, sha256: sha256(body) }));
    expect(error.code).toBe('STORAGE_KEY_INVALID');
    expect(error.details['rule']).toBe('path-conflict');
    expect(await listFiles(root)).toEqual(['dir/inner.png']);
  });

  it('fails with a retryable STORAGE_WRITE_FAILED when a linked subfolder points at a missing disk, writing nothing', async () => {
    // Works the same as root (permission bits would not stop root): the link target is simply gone.
    await mkdir(root);
    await symlink(path.join(sandbox, 'unmounted', 'disk'), path.join(root, 'linked'));
    const body = bytesOf('x');
    const error = await caught(() => storage.put({ key: 'linked/a.png', body, sha256: sha256(body) }));
    expect(error.code).toBe('STORAGE_WRITE_FAILED');
    expect(error.retry).toBe('transient');
    expect(error.message).toContain(pathToFileURL(path.join(root, 'linked', 'a.png')).href);
    expect(error.cause).toBeInstanceOf(Error);
    expect(await listFiles(sandbox)).toEqual([]);
  });

  it('check() creates the folder, leaves nothing behind, and fails with STORAGE_UNAVAILABLE when it cannot write', async () => {
    await storage.check();
    expect((await stat(root)).isDirectory()).toBe(true);
    expect(await listFiles(root)).toEqual([]);

    await writeFile(path.join(sandbox, 'a-file'), 'not a folder');
    const blocked = createStorage({ url: `file:${path.join(sandbox, 'a-file', 'output')}` });
    const error = await caught(() => blocked.check());
    expect(error.code).toBe('STORAGE_UNAVAILABLE');
    expect(error.message).toContain(path.join(sandbox, 'a-file', 'output'));
  });

  it('close() is idempotent', async () => {
    await storage.close();
    await storage.close();
  });

  it('resolves a relative folder against the working directory at creation', () => {
    const relative = createStorage({ url: 'file:./output' });
    expect(relative.description).toBe(`file:${path.resolve(process.cwd(), 'output')}`);
  });

  it('follows a symlinked folder inside the storage folder (operators may point subfolders at other disks)', async () => {
    const elsewhere = path.join(sandbox, 'elsewhere');
    await mkdir(elsewhere);
    await mkdir(root);
    await symlink(elsewhere, path.join(root, 'linked'));
    const body = bytesOf('via link');
    await storage.put({ key: 'linked/a.png', body, sha256: sha256(body) });
    expect(await readFile(path.join(elsewhere, 'a.png'), 'utf8')).toBe('via link');
  });
});

describe('resolveContainedPath (second line of defence)', () => {
  const root = path.resolve('/srv/output');

  it.each(['../x', 'a/../../x', '/etc/passwd', '..', '.', '', 'a/..'])('refuses %j even without the key rules', (key) => {
    let error: unknown;
    try {
      resolveContainedPath(root, key);
    } catch (thrown) {
      error = thrown;
    }
    expect(isAppError(error) && error.code).toBe('STORAGE_KEY_INVALID');
    expect(isAppError(error) && error.details['rule']).toBe('outside-folder');
  });

  it.each([
    ['a.png', '/srv/output/a.png'],
    ['a/b/../c.png', '/srv/output/a/c.png'],
    ['..hidden', '/srv/output/..hidden'],
  ])('resolves %j inside the folder', (key, expected) => {
    expect(resolveContainedPath(root, key)).toBe(path.resolve(expected));
  });
});

describe('parseStorageUrl', () => {
  it.each([
    ['file:./output', { kind: 'file', dir: './output' }],
    ['file:output', { kind: 'file', dir: 'output' }],
    ['file:/abs/dir', { kind: 'file', dir: '/abs/dir' }],
    ['file:///abs/dir', { kind: 'file', dir: '/abs/dir' }],
    ['file:///abs/with%20space', { kind: 'file', dir: '/abs/with space' }],
    ['file://localhost/abs/dir', { kind: 'file', dir: '/abs/dir' }],
    ['s3://images', { kind: 's3', bucket: 'images', prefix: '' }],
    ['s3://images/', { kind: 's3', bucket: 'images', prefix: '' }],
    ['s3://images/some/prefix', { kind: 's3', bucket: 'images', prefix: 'some/prefix' }],
    ['s3://images/some/prefix/', { kind: 's3', bucket: 'images', prefix: 'some/prefix' }],
    ['s3://my.bucket-2/商品', { kind: 's3', bucket: 'my.bucket-2', prefix: '商品' }],
  ])('parses %j', (url, expected) => {
    expect(parseStorageUrl(url)).toEqual(expected);
  });

  it.each([
    ['an empty value', '', 'empty'],
    ['an unknown scheme', 'gs://bucket', 'scheme'],
    ['a bare path', '/var/output', 'scheme'],
    ['an empty file folder', 'file:', 'file-empty'],
    ['a remote file host', 'file://server/share', 'file-url'],
    ['a file URL with a query', 'file:///abs?x=1', 'file-query'],
    ['a missing bucket', 's3://', 's3-bucket'],
    ['an uppercase bucket', 's3://Images', 's3-bucket'],
    ['a too-short bucket', 's3://ab', 's3-bucket'],
    ['an underscore in the bucket', 's3://my_bucket', 's3-bucket'],
    ['credentials in the URL', 's3://AKIAEXAMPLE:very-secret@images/p', 's3-credentials'],
    ['a query', 's3://images/p?versionId=1', 's3-query'],
    ['a parent segment in the prefix', 's3://images/a/../b', 's3-prefix'],
    ['an empty segment in the prefix', 's3://images//p', 's3-prefix'],
    ['a backslash in the prefix', 's3://images/a\\b', 's3-prefix'],
    ['a control character in the prefix', 's3://images/a\nb', 's3-prefix'],
  ])('rejects %s (%j) with CONFIG_INVALID naming STORAGE_URL', (_label, url, rule) => {
    let error: unknown;
    try {
      parseStorageUrl(url);
    } catch (thrown) {
      error = thrown;
    }
    expect(isAppError(error)).toBe(true);
    const appError = error as AppError;
    expect(appError.code).toBe('CONFIG_INVALID');
    expect(appError.message).toMatch(/^STORAGE_URL /);
    expect(appError.details).toEqual({ variable: 'STORAGE_URL', rule });
  });

  it('never echoes credentials from a mistyped URL', () => {
    try {
      parseStorageUrl('s3://AKIAEXAMPLE:very-secret@images');
      expect.unreachable();
    } catch (error) {
      expect(JSON.stringify(error)).not.toContain('very-secret');
      expect((error as Error).message).not.toContain('very-secret');
    }
  });
});
