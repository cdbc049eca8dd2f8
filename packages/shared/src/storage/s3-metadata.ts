import { AppError } from '../errors.js';

/**
 * How job metadata travels as S3 user metadata (`x-amz-meta-*` headers).
 *
 * Keys: HTTP header names are case-insensitive and S3 returns them lowercased, so keys are
 * lowercased here; a key that is not `[a-z0-9_.-]{1,64}` after that is refused. When two keys
 * differ only in case, the later one wins.
 *
 * Values: headers carry printable US-ASCII only, and HTTP trims surrounding whitespace. A value is
 * stored as is when it is printable ASCII (U+0020–U+007E) with no leading or trailing space and
 * does not start with the marker `pct-utf8:`. Any other value (Chinese product titles, tabs,
 * newlines, " padded ") is stored as `pct-utf8:` + the value with every character outside
 * U+0021–U+007E, and every `%`, percent-encoded as UTF-8 (`encodeURIComponent` per character).
 * `head` reverses it. Because an ASCII value that happens to start with the marker is itself
 * encoded, decoding is unambiguous. Example: `手机壳` → `pct-utf8:%E6%89%8B%E6%9C%BA%E5%A3%B3`.
 *
 * Reserved: `sha256` holds the lowercase hex sha256 of the body and drives skip-if-identical. A
 * job metadata entry named `sha256` (any case) is overwritten by the real digest.
 */
export const ENCODED_VALUE_MARKER = 'pct-utf8:';
export const SHA256_METADATA_KEY = 'sha256';
/** S3's limit on user metadata: the UTF-8 bytes of every key and (stored, i.e. encoded) value. */
export const MAX_S3_METADATA_BYTES = 2048;

const HEADER_KEY = /^[a-z0-9_.-]{1,64}$/;
const NEEDS_ENCODING = /[^\x20-\x7e]|^ | $/;
const ENCODE_CHARACTER = /[^\x21-\x7e]|%/gu;
const LONE_SURROGATE = /[\ud800-\udfff]/u;

/** Builds the `Metadata` for PutObject. Throws `REQUEST_INVALID` for metadata S3 cannot hold. */
export function encodeS3Metadata(metadata: Readonly<Record<string, string>> | undefined, sha256: string): Record<string, string> {
  const encoded: Record<string, string> = {};
  for (const [rawKey, value] of Object.entries(metadata ?? {})) {
    const key = rawKey.toLowerCase();
    if (!HEADER_KEY.test(key)) {
      throw invalid(`metadata key ${JSON.stringify(rawKey)} cannot be stored: keys must match [A-Za-z0-9_.-]{1,64}`, rawKey);
    }
    if (typeof value !== 'string') throw invalid(`metadata value of ${JSON.stringify(rawKey)} must be a string`, rawKey);
    if (LONE_SURROGATE.test(value)) throw invalid(`metadata value of ${JSON.stringify(rawKey)} is not well-formed Unicode`, rawKey);
    if (key === SHA256_METADATA_KEY) continue;
    encoded[key] = encodeMetadataValue(value);
  }
  encoded[SHA256_METADATA_KEY] = sha256.toLowerCase();
  const bytes = s3MetadataBytes(encoded);
  if (bytes > MAX_S3_METADATA_BYTES) {
    // Checked here because S3 would answer 400 and the worker would retry a write that can never work.
    throw new AppError(
      'REQUEST_INVALID',
      `metadata takes ${bytes} bytes as S3 user metadata (non-ASCII values are percent-encoded, about 3x larger); S3 allows ${MAX_S3_METADATA_BYTES}`,
      { details: { field: 'metadata', bytes, limit: MAX_S3_METADATA_BYTES } },
    );
  }
  return encoded;
}

/** Splits S3 `Metadata` into the stored digest and the decoded job metadata. */
export function decodeS3Metadata(raw: Readonly<Record<string, string>> | undefined): {
  sha256: string | undefined;
  metadata: Record<string, string>;
} {
  let sha256: string | undefined;
  const metadata: Record<string, string> = {};
  for (const [rawKey, value] of Object.entries(raw ?? {})) {
    const key = rawKey.toLowerCase();
    if (key === SHA256_METADATA_KEY) sha256 = value;
    else metadata[key] = decodeMetadataValue(value);
  }
  return { sha256, metadata };
}

export function encodeMetadataValue(value: string): string {
  if (!NEEDS_ENCODING.test(value) && !value.startsWith(ENCODED_VALUE_MARKER)) return value;
  return ENCODED_VALUE_MARKER + value.replace(ENCODE_CHARACTER, (char) => encodeURIComponent(char));
}

export function decodeMetadataValue(value: string): string {
  if (!value.startsWith(ENCODED_VALUE_MARKER)) return value;
  try {
    return decodeURIComponent(value.slice(ENCODED_VALUE_MARKER.length));
  } catch {
    // Written by something else with a malformed escape: show it as stored rather than fail a read.
    return value;
  }
}

/** Size of already-encoded metadata the way S3 counts it. */
export function s3MetadataBytes(encoded: Readonly<Record<string, string>>): number {
  let bytes = 0;
  for (const [key, value] of Object.entries(encoded)) bytes += Buffer.byteLength(key) + Buffer.byteLength(value);
  return bytes;
}

function invalid(message: string, key: string): AppError {
  return new AppError('REQUEST_INVALID', message, { details: { field: `metadata.${key}` } });
}
