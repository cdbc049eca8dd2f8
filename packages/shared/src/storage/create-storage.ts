import type { S3Client } from '@aws-sdk/client-s3';
import { createFileStorage } from './file-storage.js';
import { createS3Storage } from './s3-storage.js';
import type { Storage, StorageConfig } from './storage.js';
import { parseStorageUrl } from './storage-url.js';

export interface CreateStorageOptions {
  /** Use this client instead of building one from `config.s3` (it is then not destroyed by `close()`). */
  s3Client?: S3Client;
}

/** Picks the driver from `config.url`. Throws `CONFIG_INVALID` for a bad URL or endpoint. */
export function createStorage(config: StorageConfig, options: CreateStorageOptions = {}): Storage {
  const parsed = parseStorageUrl(config.url);
  if (parsed.kind === 'file') return createFileStorage({ dir: parsed.dir });
  return createS3Storage({
    bucket: parsed.bucket,
    prefix: parsed.prefix,
    ...(config.s3 === undefined ? {} : { s3: config.s3 }),
    ...(options.s3Client === undefined ? {} : { client: options.s3Client }),
  });
}
