import { AppError } from '../errors.js';
import { assertSafeObjectKey, MAX_OBJECT_KEY_BYTES } from './object-key.js';

export interface S3KeyScheme {
  /** For logs: `s3://bucket` or `s3://bucket/prefix`; never credentials. */
  description: string;
  /** The full object key of a relative key; throws STORAGE_KEY_INVALID for a key S3 cannot hold. */
  objectKey(key: string): string;
  urlOf(fullKey: string): string;
}

/** A prefix without leading or trailing `/`. */
export function trimS3Prefix(prefix: string): string {
  return prefix.replace(/^\/+|\/+$/g, '');
}

/**
 * How relative keys map to S3 object keys and URLs: pure, so that the storage can name its
 * objects without loading the AWS SDK (an optional dependency, loaded on first use).
 */
export function s3KeyScheme(bucket: string, prefix: string): S3KeyScheme {
  return {
    description: prefix === '' ? `s3://${bucket}` : `s3://${bucket}/${prefix}`,
    objectKey(key) {
      assertSafeObjectKey(key);
      const full = prefix === '' ? key : `${prefix}/${key}`;
      const bytes = Buffer.byteLength(full, 'utf8');
      if (bytes > MAX_OBJECT_KEY_BYTES) {
        throw new AppError('STORAGE_KEY_INVALID', `Object key with its prefix is ${bytes} UTF-8 bytes; S3 allows ${MAX_OBJECT_KEY_BYTES}`, {
          details: { key, rule: 'too-long' },
        });
      }
      return full;
    },
    urlOf: (fullKey) => `s3://${bucket}/${fullKey}`,
  };
}
