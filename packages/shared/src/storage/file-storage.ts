import { createHash, randomBytes } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { mkdir, open, readFile, rm, rename, stat } from 'node:fs/promises';
import type { FileHandle } from 'node:fs/promises';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { AppError, coerceError } from '../errors.js';
import { groupCommit } from '../group-commit.js';
import { assertSafeObjectKey } from './object-key.js';
import { resolveContainedPath } from './contained-path.js';
import { STORAGE_PROBE_KEY, type CopyObjectInput, type ObjectInfo, type PutObjectInput, type Storage, type StoredObject } from './storage.js';

const PROBE_BODY = new TextEncoder().encode('zimage storage probe\n');

export interface FileStorageOptions {
  /** The folder; a relative path is resolved against `process.cwd()` now, once. */
  dir: string;
}

/** errno codes meaning "no object at this key" for head/read (a name that is too long cannot exist). */
const MISSING = new Set(['ENOENT', 'ENOTDIR', 'EISDIR', 'ENAMETOOLONG']);
/**
 * errno codes meaning the key itself cannot be a file here (a folder already has its name, a
 * parent is a file, or the name is too long). Retrying cannot help, so these are key errors.
 */
const KEY_CONFLICT = new Set(['ENOTDIR', 'EISDIR', 'ENAMETOOLONG']);
/** errno codes meaning the folder refuses every write, whatever the key: the fleet must stop. */
const REFUSED = new Set(['ENOSPC', 'EDQUOT', 'EROFS', 'EACCES', 'EPERM']);

/**
 * Stores objects as plain files under one folder.
 *
 * Writes are atomic: the bytes go to a temp file in the target's own folder (same filesystem, so
 * `rename` is atomic), are fsynced, then renamed over the final path. A reader therefore sees the
 * old file or the new one, never a partial PNG, even if the process dies mid-write; at worst a
 * `.name.<random>.tmp` file is left behind.
 */
export function createFileStorage(options: FileStorageOptions): Storage {
  const root = path.resolve(options.dir);
  const description = `file:${root}`;

  const pathFor = (key: string): string => resolveContainedPath(root, assertSafeObjectKey(key));

  const storage: Storage = {
    kind: 'file',
    description,

    async copy(input: CopyObjectInput): Promise<StoredObject | null> {
      // Read, checked and written like any put (atomic, fsynced): a hard link would tie the two
      // keys together, so that rewriting one changed the other, and reflinks are not everywhere.
      const body = await storage.read(input.from);
      if (body === null) return null;
      const sha256 = createHash('sha256').update(body).digest('hex');
      if (sha256 !== input.sha256.toLowerCase()) return null;
      return storage.put({ key: input.key, body, sha256 });
    },

    async put(input: PutObjectInput): Promise<StoredObject> {
      const full = pathFor(input.key);
      const stored = { key: input.key, url: pathToFileURL(full).href, bytes: input.body.byteLength, sha256: input.sha256 };
      try {
        const existing = await hashFile(full).catch((error: unknown) => {
          if (MISSING.has(errnoCode(error) ?? '')) return undefined;
          throw error;
        });
        if (existing !== undefined && existing.sha256 === input.sha256.toLowerCase()) return { ...stored, skipped: true };
        await writeAtomically(full, input.body);
        return { ...stored, skipped: false };
      } catch (error) {
        const code = errnoCode(error);
        // The folder itself gone or replaced by a file is storage refusing every write, not this key.
        if (code !== undefined && KEY_CONFLICT.has(code) && !(await isFolder(root))) {
          throw new AppError('STORAGE_REFUSED', `Storage folder ${root} is not a folder (${code}); no image can be written`, {
            cause: coerceError(error),
            details: { key: input.key, storage: description, errno: code },
          });
        }
        if (code !== undefined && KEY_CONFLICT.has(code)) {
          throw new AppError('STORAGE_KEY_INVALID', `Object key ${JSON.stringify(input.key)} cannot be a file in ${description} (${code})`, {
            cause: coerceError(error),
            details: { key: input.key, rule: 'path-conflict', errno: code },
          });
        }
        throw new AppError(code !== undefined && REFUSED.has(code) ? 'STORAGE_REFUSED' : 'STORAGE_WRITE_FAILED', `Writing ${stored.url} failed: ${coerceError(error).message}`, {
          cause: coerceError(error),
          details: { key: input.key, storage: description, errno: code },
        });
      }
    },

    async head(key: string): Promise<ObjectInfo | null> {
      const full = pathFor(key);
      try {
        const info = await stat(full);
        if (!info.isFile()) return null;
        const { sha256, bytes } = await hashFile(full);
        return { key, bytes, sha256, metadata: {} };
      } catch (error) {
        if (MISSING.has(errnoCode(error) ?? '')) return null;
        throw unavailable(`Reading ${pathToFileURL(full).href} failed`, key, error);
      }
    },

    async read(key: string): Promise<Uint8Array | null> {
      const full = pathFor(key);
      try {
        const buffer = await readFile(full);
        return new Uint8Array(buffer.buffer, buffer.byteOffset, buffer.byteLength);
      } catch (error) {
        if (MISSING.has(errnoCode(error) ?? '')) return null;
        throw unavailable(`Reading ${pathToFileURL(full).href} failed`, key, error);
      }
    },

    urlFor(key: string): string {
      return pathToFileURL(pathFor(key)).href;
    },

    async presignedUrl(): Promise<string | undefined> {
      return undefined;
    },

    async check(): Promise<void> {
      // A real write, not `access(W_OK)`: root ignores permission bits and only a write notices a
      // read-only mount or a full disk that can no longer create files.
      const probe = path.join(root, `.zimage-check.${randomBytes(6).toString('hex')}.tmp`);
      try {
        await mkdir(root, { recursive: true });
        const handle = await open(probe, 'wx');
        await handle.close();
      } catch (error) {
        throw unavailable(`Storage folder ${root} is not writable`, undefined, error);
      } finally {
        await rm(probe, { force: true }).catch(() => undefined);
      }
    },

    async probeWrite(): Promise<void> {
      const full = path.join(root, STORAGE_PROBE_KEY);
      try {
        await mkdir(root, { recursive: true });
        await writeAtomically(full, PROBE_BODY);
        await rm(full, { force: true });
      } catch (error) {
        const code = errnoCode(error);
        throw new AppError(code !== undefined && REFUSED.has(code) ? 'STORAGE_REFUSED' : 'STORAGE_WRITE_FAILED', `Probe write to ${root} failed: ${coerceError(error).message}`, {
          cause: coerceError(error),
          details: { storage: description, errno: code },
        });
      }
    },

    async close(): Promise<void> {
      // Nothing is held open between calls.
    },
  };
  return storage;

  function unavailable(what: string, key: string | undefined, error: unknown): AppError {
    const cause = coerceError(error);
    return new AppError('STORAGE_UNAVAILABLE', `${what}: ${cause.message}`, {
      cause,
      details: { ...(key === undefined ? {} : { key }), storage: description, errno: errnoCode(error) },
    });
  }
}

async function writeAtomically(full: string, body: Uint8Array): Promise<void> {
  const folder = path.dirname(full);
  const temp = path.join(folder, `.${tempStem(path.basename(full))}.${randomBytes(6).toString('hex')}.tmp`);
  let handle: FileHandle | undefined;
  try {
    // Most puts go to a folder that exists already: create it only when the open says it is not there.
    handle = await open(temp, 'wx').catch(async (error: unknown) => {
      if (errnoCode(error) !== 'ENOENT') throw error;
      const firstCreated = await mkdir(folder, { recursive: true });
      if (firstCreated !== undefined) await syncNewFolders(firstCreated, folder);
      return open(temp, 'wx');
    });
    await handle.writeFile(body);
    await handle.sync();
    await handle.close();
    handle = undefined;
    await rename(temp, full);
  } catch (error) {
    await handle?.close().catch(() => undefined);
    await rm(temp, { force: true }).catch(() => undefined);
    throw error;
  }
  await syncFolderShared(folder, undefined);
}

/**
 * One folder fsync makes every rename done in the folder before it began durable, so renames that
 * finish while one is running share the next (it was a third of a put's cost with 16 puts at once).
 */
const syncFolderShared = groupCommit<undefined, undefined>(async (folder, callers) => {
  await syncFolder(folder);
  return callers;
});

/**
 * A folder `mkdir -p` created is itself an entry in its parent: fsync each new folder's parent so a
 * crash cannot lose the folder (and the files later renamed into it). Rare: only on creation.
 */
async function syncNewFolders(firstCreated: string, deepest: string): Promise<void> {
  for (let folder = deepest; ; folder = path.dirname(folder)) {
    await syncFolder(path.dirname(folder));
    if (folder === firstCreated || path.dirname(folder) === folder) return;
  }
}

/** Makes the rename itself durable. Best effort: some filesystems refuse to fsync a folder. */
async function syncFolder(folder: string): Promise<void> {
  let handle: FileHandle | undefined;
  try {
    handle = await open(folder, 'r');
    await handle.sync();
  } catch {
    // The data is already fsynced and renamed; only crash-durability of the name is at stake.
  } finally {
    await handle?.close().catch(() => undefined);
  }
}

/** Keeps the temp name under NAME_MAX (255 bytes) even when the final name is near it. */
function tempStem(name: string): string {
  if (Buffer.byteLength(name) <= 200) return name;
  let stem = '';
  for (const char of name) {
    if (Buffer.byteLength(stem + char) > 200) break;
    stem += char;
  }
  return stem;
}

async function isFolder(full: string): Promise<boolean> {
  return stat(full).then((info) => info.isDirectory(), () => false);
}

async function hashFile(full: string): Promise<{ sha256: string; bytes: number }> {
  const hash = createHash('sha256');
  let bytes = 0;
  for await (const chunk of createReadStream(full)) {
    const data = chunk as Buffer;
    bytes += data.byteLength;
    hash.update(data);
  }
  return { sha256: hash.digest('hex'), bytes };
}

function errnoCode(error: unknown): string | undefined {
  const code = (error as { code?: unknown } | null)?.code;
  return typeof code === 'string' ? code : undefined;
}
