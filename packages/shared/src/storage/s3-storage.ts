import { CopyObjectCommand, DeleteObjectCommand, GetObjectCommand, HeadBucketCommand, HeadObjectCommand, PutObjectCommand } from '@aws-sdk/client-s3';
import type { S3Client } from '@aws-sdk/client-s3';
import { Upload } from '@aws-sdk/lib-storage';
import { getSignedUrl } from '@aws-sdk/s3-request-presigner';
import { AppError, coerceError } from '../errors.js';
import type { ErrorCode } from '../errors.js';
import { createS3Client } from './s3-client.js';
import { s3KeyScheme, trimS3Prefix } from './s3-key-scheme.js';
import { decodeS3Metadata, encodeS3Metadata } from './s3-metadata.js';
import { STORAGE_PROBE_KEY, type CopyObjectInput, type ObjectInfo, type PutObjectInput, type Storage, type StorageConfig, type StoredObject } from './storage.js';

export interface S3StorageOptions {
  bucket: string;
  /** Key prefix without leading or trailing `/` (as `parseStorageUrl` returns it); '' for none. */
  prefix: string;
  /** Used to build the client when `client` is not given. */
  s3?: StorageConfig['s3'];
  /** An injected client is never destroyed by `close()`: its owner may still be using it. */
  client?: S3Client;
}

/** What the SDK attaches to its errors; everything optional because network errors have none. */
interface SdkErrorShape {
  name?: unknown;
  code?: unknown;
  message?: unknown;
  $metadata?: { httpStatusCode?: number; requestId?: string };
}

export function createS3Storage(options: S3StorageOptions): Storage {
  const { bucket } = options;
  const prefix = trimS3Prefix(options.prefix);
  const owned = options.client === undefined;
  const client = options.client ?? createS3Client(options.s3);
  const { description, objectKey, urlOf } = s3KeyScheme(bucket, prefix);
  // Anything the SDK might echo back that we would not want in a log line.
  const secrets = [options.s3?.secretAccessKey, options.s3?.accessKeyId].filter(
    (value): value is string => typeof value === 'string' && value.length >= 4,
  );
  let closed: Promise<void> | undefined;


  return {
    kind: 's3',
    description,

    async put(input: PutObjectInput): Promise<StoredObject> {
      const Key = objectKey(input.key);
      const Metadata = encodeS3Metadata(input.metadata, input.sha256);
      const stored = { key: input.key, url: urlOf(Key), bytes: input.body.byteLength, sha256: input.sha256 };

      // Skip-if-identical: a retried job (or a re-run batch) must not rewrite an object it already
      // stored. A 403 here is not fatal: write-only credentials cannot HEAD, so we just write.
      try {
        const existing = await client.send(new HeadObjectCommand({ Bucket: bucket, Key }));
        if (existing.Metadata?.['sha256'] === input.sha256.toLowerCase()) return { ...stored, skipped: true };
      } catch (error) {
        const status = httpStatus(error);
        if (status !== 404 && status !== 403) throw wrap('STORAGE_WRITE_FAILED', 'HeadObject', stored.url, error, { key: input.key });
      }

      try {
        // A Buffer view over the same memory: lib-storage needs a Buffer (or stream) and copying a
        // multi-megabyte image for that is waste. Bodies of 5 MB or more go multipart.
        const Body = Buffer.from(input.body.buffer, input.body.byteOffset, input.body.byteLength);
        const upload = new Upload({
          client,
          params: { Bucket: bucket, Key, Body, ContentType: input.contentType ?? 'image/png', Metadata },
        });
        await upload.done();
      } catch (error) {
        throw wrap(writeErrorCode(error), 'Upload', stored.url, error, { key: input.key });
      }
      return { ...stored, skipped: false };
    },

    async copy(input: CopyObjectInput): Promise<StoredObject | null> {
      const Key = objectKey(input.key);
      const SourceKey = objectKey(input.from);
      const sha256 = input.sha256.toLowerCase();
      const stored = { key: input.key, url: urlOf(Key), sha256 };
      let etag: string | undefined;
      let bytes = 0;
      try {
        if (input.key !== input.from) {
          const existing = await headOrNull(Key);
          if (existing?.Metadata?.['sha256'] === sha256) return { ...stored, bytes: existing.ContentLength ?? 0, skipped: true };
        }
        const source = await headOrNull(SourceKey);
        if (source?.Metadata?.['sha256'] !== sha256) return null;
        if (input.key === input.from) return { ...stored, bytes: source.ContentLength ?? 0, skipped: true };
        etag = source.ETag;
        bytes = source.ContentLength ?? 0;
      } catch (error) {
        throw wrap('STORAGE_UNAVAILABLE', 'HeadObject', urlOf(SourceKey), error, { key: input.from });
      }
      try {
        // Server-side: the bytes never pass through the worker. If-Match on the ETag read above, so
        // a source rewritten in between is not copied under the old image's sha256.
        await client.send(
          new CopyObjectCommand({
            Bucket: bucket,
            Key,
            CopySource: `${bucket}/${SourceKey.split('/').map(encodeURIComponent).join('/')}`,
            ...(etag === undefined ? {} : { CopySourceIfMatch: etag }),
            MetadataDirective: 'REPLACE',
            ContentType: input.contentType ?? 'image/png',
            Metadata: encodeS3Metadata(input.metadata, sha256),
          }),
        );
      } catch (error) {
        const status = httpStatus(error);
        if (status === 412 || errorName(error) === 'NoSuchKey') return null;
        throw wrap(writeErrorCode(error), 'CopyObject', stored.url, error, { key: input.key });
      }
      return { ...stored, bytes, skipped: false };
    },

    async head(key: string): Promise<ObjectInfo | null> {
      const Key = objectKey(key);
      try {
        const response = await client.send(new HeadObjectCommand({ Bucket: bucket, Key }));
        const { sha256, metadata } = decodeS3Metadata(response.Metadata);
        return { key, bytes: response.ContentLength ?? 0, sha256, metadata };
      } catch (error) {
        // HEAD has no error body, so a missing bucket is also a bare 404 here; `check()` tells them apart.
        if (httpStatus(error) === 404) return null;
        throw wrap('STORAGE_UNAVAILABLE', 'HeadObject', urlOf(Key), error, { key });
      }
    },

    async read(key: string): Promise<Uint8Array | null> {
      const Key = objectKey(key);
      try {
        const response = await client.send(new GetObjectCommand({ Bucket: bucket, Key }));
        return response.Body === undefined ? new Uint8Array() : await response.Body.transformToByteArray();
      } catch (error) {
        if (errorName(error) === 'NoSuchKey' || (httpStatus(error) === 404 && errorName(error) !== 'NoSuchBucket')) return null;
        throw wrap('STORAGE_UNAVAILABLE', 'GetObject', urlOf(Key), error, { key });
      }
    },

    urlFor(key: string): string {
      return urlOf(objectKey(key));
    },

    async presignedUrl(key: string, ttlSeconds: number): Promise<string | undefined> {
      // Signing is local (no request); SigV4 caps presigned URLs at 7 days.
      return getSignedUrl(client, new GetObjectCommand({ Bucket: bucket, Key: objectKey(key) }), {
        expiresIn: Math.max(1, Math.min(7 * 24 * 3600, Math.floor(ttlSeconds))),
      });
    },

    async check(): Promise<void> {
      try {
        await client.send(new HeadBucketCommand({ Bucket: bucket }));
      } catch (error) {
        throw wrap('STORAGE_UNAVAILABLE', 'HeadBucket', `s3://${bucket}`, error, {});
      }
    },

    async probeWrite(): Promise<void> {
      const Key = prefix === '' ? STORAGE_PROBE_KEY : `${prefix}/${STORAGE_PROBE_KEY}`;
      try {
        await client.send(new PutObjectCommand({ Bucket: bucket, Key, Body: 'zimage storage probe\n', ContentType: 'text/plain' }));
      } catch (error) {
        throw wrap(writeErrorCode(error), 'PutObject', urlOf(Key), error, {});
      }
      // Write-only credentials may not delete: the probe is then left as one small dot file.
      await client.send(new DeleteObjectCommand({ Bucket: bucket, Key })).catch(() => undefined);
    },

    close(): Promise<void> {
      closed ??= Promise.resolve().then(() => {
        if (owned) client.destroy();
      });
      return closed;
    },
  };

  /** HeadObject's answer, or null for a missing object (and for write-only credentials, which cannot HEAD). */
  async function headOrNull(Key: string) {
    try {
      return await client.send(new HeadObjectCommand({ Bucket: bucket, Key }));
    } catch (error) {
      const status = httpStatus(error);
      if (status === 404 || status === 403) return null;
      throw error;
    }
  }

  function wrap(code: ErrorCode, operation: string, target: string, error: unknown, details: Record<string, unknown>): AppError {
    const shape = (error ?? {}) as SdkErrorShape;
    const status = httpStatus(error);
    // The SDK names errors it could not parse (HEAD responses have no body) "Unknown"/"UnknownError";
    // network failures are plain `Error`s with an errno code. Neither name says anything.
    const rawName = errorName(error);
    const name = rawName === undefined || UNINFORMATIVE.has(rawName) ? undefined : rawName;
    const errno = typeof shape.code === 'string' && shape.code !== rawName ? shape.code : undefined;
    const sdkMessage = typeof shape.message === 'string' && !UNINFORMATIVE.has(shape.message) ? shape.message : '';
    const hint = hintFor(operation, status);
    const facts = [name, errno, status === undefined ? undefined : `HTTP ${status}`].filter((part) => part !== undefined);
    // Node's AggregateError (happy eyeballs) has an empty message; the errno then says it all.
    const reason = [hint, facts.length > 0 ? facts.join(', ') : undefined, sdkMessage !== '' && sdkMessage !== name ? sdkMessage : undefined]
      .filter((part) => part !== undefined)
      .join(': ');
    return new AppError(code, redact(`S3 ${operation} ${target} failed${reason === '' ? '' : `: ${reason}`}`), {
      cause: coerceError(error),
      details: {
        ...details,
        storage: description,
        operation,
        ...(status === undefined ? {} : { httpStatus: status }),
        ...(name === undefined ? {} : { awsCode: redact(name) }),
        ...(errno === undefined ? {} : { errno }),
        ...(shape.$metadata?.requestId === undefined ? {} : { requestId: shape.$metadata.requestId }),
      },
    });
  }

  function redact(text: string): string {
    let result = text;
    for (const secret of secrets) result = result.split(secret).join('[redacted]');
    return result;
  }
}

const UNINFORMATIVE = new Set(['Error', 'Unknown', 'UnknownError']);

/** S3 error names that refuse every write, whatever the key (credentials, bucket, region). */
const REFUSING = new Set(['AccessDenied', 'NoSuchBucket', 'InvalidAccessKeyId', 'SignatureDoesNotMatch', 'PermanentRedirect', 'AllAccessDisabled', 'AccountProblem', 'InvalidBucketName']);

/** A write refused for every key stops the fleet (STORAGE_REFUSED); anything else is retried. */
function writeErrorCode(error: unknown): ErrorCode {
  const status = httpStatus(error);
  const name = errorName(error);
  if (status === 403 || status === 301 || (name !== undefined && REFUSING.has(name))) return 'STORAGE_REFUSED';
  return 'STORAGE_WRITE_FAILED';
}

function hintFor(operation: string, status: number | undefined): string | undefined {
  if (status === 403) return 'access denied (check the credentials and the bucket policy)';
  if (status === 404 && operation === 'HeadBucket') return 'the bucket does not exist';
  if (status === 301) return 'the bucket is in another region (check AWS_REGION)';
  return undefined;
}

function httpStatus(error: unknown): number | undefined {
  const status = (error as SdkErrorShape | null)?.$metadata?.httpStatusCode;
  return typeof status === 'number' ? status : undefined;
}

function errorName(error: unknown): string | undefined {
  const name = (error as SdkErrorShape | null)?.name;
  return typeof name === 'string' ? name : undefined;
}
