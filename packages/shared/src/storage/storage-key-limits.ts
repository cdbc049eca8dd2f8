/**
 * How long a key may be on the configured store once its folder or S3 prefix is counted.
 *
 * `assertSafeObjectKey` holds for every store; the folder and the prefix belong to one deployment,
 * so their share is worked out once from STORAGE_URL where a producer is created, and every key
 * is checked against it at enqueue: a key the store cannot take must be refused before its image
 * is generated and billed, not when the worker comes to write it.
 */
import path from 'node:path';
import { AppError } from '../errors.js';
import { describeKey, MAX_OBJECT_KEY_BYTES } from './object-key.js';
import type { ParsedStorageUrl } from './storage-url.js';

/**
 * Linux's PATH_MAX (4096) less the terminating NUL: the longest path open(2) takes. The worker's
 * image is Linux; macOS (1024) is not checked, Windows has no such limit for Node.
 */
export const MAX_FILE_PATH_BYTES = 4095;

/**
 * The file driver first writes `.{name}.{12 hex}.tmp` beside the object (file-storage.ts,
 * `writeAtomically`), so the longest path it opens is the object's plus a leading dot, a dot,
 * 12 hex digits and `.tmp`. Its `tempStem` shortens names over 200 bytes to keep that temp name
 * within 255 bytes (at most 218), which only ever makes the path shorter.
 */
const TEMP_NAME_EXTRA_BYTES = 1 + 1 + 12 + 4;

/** `too-long` is the S3 driver's own name for prefix + key over 1024 bytes. */
export type StorageKeyRule = 'too-long' | 'path-too-long';

export interface StorageKeyLimits {
  /** Most UTF-8 bytes a key may have on this store (never more than MAX_OBJECT_KEY_BYTES). */
  maxKeyBytes: number;
  rule: StorageKeyRule;
  /** What takes the other bytes, in words, for the error message. */
  reason: string;
}

/**
 * The limits for `target` (from `parseStorageUrl`). A relative folder is resolved against `cwd`,
 * as the file driver resolves it against the worker's: the check is exact when producer and
 * worker name the same folder. Throws CONFIG_INVALID naming STORAGE_URL when no key could fit.
 */
export function storageKeyLimits(target: ParsedStorageUrl, cwd: string = process.cwd()): StorageKeyLimits {
  const limits = target.kind === 's3' ? s3Limits(target.prefix) : fileLimits(path.resolve(cwd, target.dir));
  if (limits.maxKeyBytes < 1) {
    throw new AppError('CONFIG_INVALID', `STORAGE_URL leaves no room for object keys: ${limits.reason}`, {
      details: { variable: 'STORAGE_URL', rule: 'no-room-for-keys' },
    });
  }
  return limits;
}

/** Returns `key` when it fits `limits`; throws STORAGE_KEY_INVALID naming the rule and both byte counts. */
export function assertKeyFitsStorage(key: string, limits: StorageKeyLimits): string {
  const bytes = Buffer.byteLength(key, 'utf8');
  if (bytes > limits.maxKeyBytes) {
    throw new AppError(
      'STORAGE_KEY_INVALID',
      `Object key ${describeKey(key)} is ${bytes} UTF-8 bytes; this store takes at most ${limits.maxKeyBytes}: ${limits.reason} (rule ${limits.rule})`,
      { details: { key, rule: limits.rule, bytes, maxKeyBytes: limits.maxKeyBytes } },
    );
  }
  return key;
}

function s3Limits(prefix: string): StorageKeyLimits {
  if (prefix === '') return { maxKeyBytes: MAX_OBJECT_KEY_BYTES, rule: 'too-long', reason: `S3 allows ${MAX_OBJECT_KEY_BYTES} bytes for a whole key` };
  const taken = Buffer.byteLength(prefix, 'utf8') + 1; // the "/" between prefix and key
  return {
    maxKeyBytes: MAX_OBJECT_KEY_BYTES - taken,
    rule: 'too-long',
    reason: `S3 allows ${MAX_OBJECT_KEY_BYTES} bytes for a whole key, and the STORAGE_URL prefix ${describeKey(prefix)} with its "/" takes ${taken}`,
  };
}

function fileLimits(root: string): StorageKeyLimits {
  const rootBytes = Buffer.byteLength(root, 'utf8');
  const room = MAX_FILE_PATH_BYTES - rootBytes - 1 - TEMP_NAME_EXTRA_BYTES;
  return {
    maxKeyBytes: Math.min(MAX_OBJECT_KEY_BYTES, room),
    rule: 'path-too-long',
    reason:
      `a path may have ${MAX_FILE_PATH_BYTES} bytes (Linux PATH_MAX), and the STORAGE_URL folder ${describeKey(root)} (${rootBytes} bytes), ` +
      `its "/" and the ${TEMP_NAME_EXTRA_BYTES} bytes the temp file's name adds take ${rootBytes + 1 + TEMP_NAME_EXTRA_BYTES}`,
  };
}
