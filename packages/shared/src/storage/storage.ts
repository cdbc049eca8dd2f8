/**
 * The object store contract shared by the `file:` and `s3://` drivers.
 *
 * Keys are always relative to the configured folder or prefix and pass `assertSafeObjectKey`.
 * Every method that takes a key validates it; errors are `AppError`s with `STORAGE_*` codes
 * (`REQUEST_INVALID` for metadata the S3 driver cannot store). A write fails with
 * `STORAGE_REFUSED` when the store refuses every write of this kind, not just this one (access
 * denied, no such bucket, disk full, read-only), so that the fleet stops instead of retrying job
 * by job; with `STORAGE_KEY_INVALID` when only this key can never be stored; otherwise with
 * `STORAGE_WRITE_FAILED` (worth retrying).
 */

/** The probe object's name (a dot file: listings and galleries can leave it out). */
export const STORAGE_PROBE_KEY = '.zimage-probe';

export interface StorageConfig {
  /** `file:./output`, `file:/abs/dir`, `file:///abs/dir`, or `s3://bucket` / `s3://bucket/some/prefix` */
  url: string;
  s3?: {
    /** Default `us-east-1`. */
    region?: string;
    /** e.g. `http://127.0.0.1:4568` for an emulator; default: the AWS endpoint for the region. */
    endpoint?: string;
    /** Default false (virtual-hosted style); emulators usually need true. */
    forcePathStyle?: boolean;
    /** Used only together with `secretAccessKey`; otherwise the SDK's default credential chain. */
    accessKeyId?: string;
    secretAccessKey?: string;
  };
}

export interface PutObjectInput {
  /** Object key relative to the folder / prefix, e.g. "catalogue/sku-1.png". */
  key: string;
  body: Uint8Array;
  /** Lowercase hex sha256 of `body`, computed by the caller (it is trusted, not recomputed). */
  sha256: string;
  /** Default 'image/png'. Ignored by the file driver. */
  contentType?: string;
  /** Job metadata; stored as S3 user metadata (keys lowercased). Ignored by the file driver. */
  metadata?: Record<string, string>;
}

export interface CopyObjectInput {
  /** The stored object to copy (relative key). */
  from: string;
  /** Where the copy goes (relative key). */
  key: string;
  /** The sha256 the source must still have: a source overwritten since by another image is not copied. */
  sha256: string;
  /** Default 'image/png'. Ignored by the file driver. */
  contentType?: string;
  /** The copy's own metadata (S3); ignored by the file driver. */
  metadata?: Record<string, string>;
}

export interface StoredObject {
  /** The relative key, as given. */
  key: string;
  /** `file:///abs/path` or `s3://bucket/prefix/key`. */
  url: string;
  bytes: number;
  sha256: string;
  /** True when an object with the same sha256 was already there and nothing was written. */
  skipped: boolean;
}

export interface ObjectInfo {
  key: string;
  bytes: number;
  /** From the bytes (file) or the `sha256` metadata (s3); undefined when an s3 object has none. */
  sha256: string | undefined;
  /** User metadata without the driver's own entries (`sha256`); always `{}` for the file driver. */
  metadata: Record<string, string>;
}

export interface Storage {
  readonly kind: 'file' | 's3';
  /** For logs: "file:/abs/output" or "s3://bucket/prefix"; never credentials. */
  readonly description: string;
  put(input: PutObjectInput): Promise<StoredObject>;
  /**
   * A copy of a stored object under another key, inside the store (S3 CopyObject; a file copy):
   * null when `from` is gone or no longer holds `sha256`. `skipped` when `key` already holds it.
   * Throws like `put`.
   */
  copy(input: CopyObjectInput): Promise<StoredObject | null>;
  /** null when there is no object at `key`. */
  head(key: string): Promise<ObjectInfo | null>;
  /** null when there is no object at `key`. */
  read(key: string): Promise<Uint8Array | null>;
  /** file: "file:///abs/path"; s3: "s3://bucket/prefix/key". */
  urlFor(key: string): string;
  /**
   * An https URL anyone holding it can GET for `ttlSeconds` (S3 presigned GET; at most 7 days), or
   * undefined when the driver has none (file). Used for webhook payloads: links, not image bytes.
   */
  presignedUrl(key: string, ttlSeconds: number): Promise<string | undefined>;
  /** Readiness: folder writable / bucket reachable (HeadBucket). Throws STORAGE_UNAVAILABLE. */
  check(): Promise<void>;
  /**
   * A real write of a tiny object (`.zimage-probe` under the folder or prefix, removed again where
   * the credentials allow): the only proof that a storage which refused writes accepts them again.
   * Throws like `put`.
   */
  probeWrite(): Promise<void>;
  /** Idempotent. */
  close(): Promise<void>;
}
