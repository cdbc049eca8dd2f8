import { S3Client } from '@aws-sdk/client-s3';
import type { S3ClientConfig } from '@aws-sdk/client-s3';
import { AppError } from '../errors.js';
import type { StorageConfig } from './storage.js';

export const DEFAULT_S3_REGION = 'us-east-1';

/**
 * Builds the S3Client the `s3://` driver uses when none is injected.
 *
 * One attempt per request (see `maxAttempts`). Checksums are `WHEN_REQUIRED`: with the SDK default (`WHEN_SUPPORTED`) streamed bodies are sent
 * `aws-chunked` with a trailing checksum, and S3 emulators such as s3rver store the chunk framing
 * as object bytes without any error (reference/toolchain.md, S3 section). An injected client for
 * an emulator needs the same two settings.
 */
export function createS3Client(s3: StorageConfig['s3'] = {}): S3Client {
  const config: S3ClientConfig = {
    region: s3.region ?? DEFAULT_S3_REGION,
    forcePathStyle: s3.forcePathStyle ?? false,
    requestChecksumCalculation: 'WHEN_REQUIRED',
    responseChecksumValidation: 'WHEN_REQUIRED',
    // One retry layer: the worker retries a paid image's store itself (with backoff, without a
    // limit, and with the fleet paused when storage is down), so the SDK's own retries (3 by
    // default) would only multiply the attempts and hide how long storage has been failing.
    maxAttempts: 1,
  };
  if (s3.endpoint !== undefined) {
    if (!isHttpUrl(s3.endpoint)) {
      // The endpoint is not echoed: a URL with user:password@ would leak it into logs.
      throw new AppError('CONFIG_INVALID', 'AWS_ENDPOINT_URL_S3 must be an http(s) URL', {
        details: { variable: 'AWS_ENDPOINT_URL_S3', rule: 'url' },
      });
    }
    config.endpoint = s3.endpoint;
  }
  // Only a complete pair is explicit; anything less leaves the SDK's default chain (env, profile,
  // instance role) in charge, as the AWS CLI would.
  if (s3.accessKeyId !== undefined && s3.secretAccessKey !== undefined) {
    config.credentials = { accessKeyId: s3.accessKeyId, secretAccessKey: s3.secretAccessKey };
  }
  return new S3Client(config);
}

function isHttpUrl(value: string): boolean {
  try {
    const url = new URL(value);
    return url.protocol === 'http:' || url.protocol === 'https:';
  } catch {
    return false;
  }
}
