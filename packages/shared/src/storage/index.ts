export { assertSafeObjectKey, MAX_OBJECT_KEY_BYTES, type ObjectKeyRule } from './object-key.js';
export { parseStorageUrl, type ParsedStorageUrl } from './storage-url.js';
export { createStorage, S3_DRIVER_PACKAGES, type CreateStorageOptions, type S3ClientLike } from './create-storage.js';
export { createFileStorage, type FileStorageOptions } from './file-storage.js';
export {
  decodeS3Metadata,
  encodeS3Metadata,
  ENCODED_VALUE_MARKER,
  MAX_S3_METADATA_BYTES,
  s3MetadataBytes,
} from './s3-metadata.js';
export { STORAGE_PROBE_KEY } from './storage.js';
export type { CopyObjectInput, ObjectInfo, PutObjectInput, Storage, StorageConfig, StoredObject } from './storage.js';
export { resolveContainedPath } from './contained-path.js';
