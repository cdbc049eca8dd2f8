/**
 * `@zimage/shared/s3`: the S3 driver itself, for code that builds its own client or storage.
 * A separate entry point because it loads the AWS SDK, an optional dependency: `createStorage`
 * of the main entry point loads it only when an `s3://` storage is first used.
 */
export { createS3Storage, type S3StorageOptions } from './storage/s3-storage.js';
export { createS3Client, DEFAULT_S3_REGION } from './storage/s3-client.js';
