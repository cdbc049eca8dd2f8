import { AppError } from '../errors.js';
import { createFileStorage } from './file-storage.js';
import type { S3StorageOptions } from './s3-storage.js';
import { s3KeyScheme, trimS3Prefix } from './s3-key-scheme.js';
import type { Storage, StorageConfig } from './storage.js';
import { parseStorageUrl } from './storage-url.js';

/** An `S3Client` of `@aws-sdk/client-s3`, typed loosely so that this module needs no AWS types. */
export interface S3ClientLike {
  send(command: never): Promise<unknown>;
  destroy(): void;
}

export interface CreateStorageOptions {
  /** Use this client instead of building one from `config.s3` (it is then not destroyed by `close()`). */
  s3Client?: S3ClientLike;
}

/** The AWS SDK packages `s3://` storage loads on first use (optional peer dependencies of @zimage/shared). */
export const S3_DRIVER_PACKAGES = ['@aws-sdk/client-s3', '@aws-sdk/lib-storage', '@aws-sdk/s3-request-presigner'] as const;

/** Picks the driver from `config.url`. Throws `CONFIG_INVALID` for a bad URL or endpoint. */
export function createStorage(config: StorageConfig, options: CreateStorageOptions = {}): Storage {
  const parsed = parseStorageUrl(config.url);
  if (parsed.kind === 'file') return createFileStorage({ dir: parsed.dir });
  return lazyS3Storage({
    bucket: parsed.bucket,
    prefix: parsed.prefix,
    ...(config.s3 === undefined ? {} : { s3: config.s3 }),
    ...(options.s3Client === undefined ? {} : { client: options.s3Client as NonNullable<S3StorageOptions['client']> }),
  });
}

/**
 * The S3 driver, loaded on its first call: a service that only enqueues never loads (or needs to
 * install) the AWS SDK. Names and URLs of objects need no SDK, so `urlFor` stays synchronous.
 */
function lazyS3Storage(options: S3StorageOptions): Storage {
  const keys = s3KeyScheme(options.bucket, trimS3Prefix(options.prefix));
  let driver: Promise<Storage> | undefined;
  const load = (): Promise<Storage> => (driver ??= import('./s3-storage.js').then((m) => m.createS3Storage(options), missingSdk));
  return {
    kind: 's3',
    description: keys.description,
    put: async (input) => (await load()).put(input),
    copy: async (input) => (await load()).copy(input),
    head: async (key) => (await load()).head(key),
    read: async (key) => (await load()).read(key),
    urlFor: (key) => keys.urlOf(keys.objectKey(key)),
    presignedUrl: async (key, ttlSeconds) => (await load()).presignedUrl(key, ttlSeconds),
    check: async () => (await load()).check(),
    probeWrite: async () => (await load()).probeWrite(),
    close: async () => {
      if (driver) await (await driver).close();
    },
  };
}

function missingSdk(error: unknown): never {
  const code = (error as { code?: unknown } | null)?.code;
  if (code === 'ERR_MODULE_NOT_FOUND' || code === 'MODULE_NOT_FOUND') {
    throw new AppError('CONFIG_INVALID', `STORAGE_URL is s3://, but the AWS SDK is not installed (${S3_DRIVER_PACKAGES.join(', ')})`, {
      action: `npm install ${S3_DRIVER_PACKAGES.join(' ')} (they are optional dependencies of @zimage/shared), or use a file: STORAGE_URL`,
    });
  }
  throw error;
}
