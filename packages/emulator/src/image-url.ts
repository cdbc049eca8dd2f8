import { createHmac, timingSafeEqual } from 'node:crypto';
import type { ImageKey } from './image-key.js';
import { imageKeyId } from './image-key.js';
import { MAX_PIXELS, MAX_SEED, MIN_PIXELS } from './validate-request.js';

export const IMAGE_PATH_PREFIX = '/oss/';
export const OSS_ACCESS_KEY_ID = 'LTAIemulator';
const BUCKET_DIR = 'zimage-emulator';

// /oss/zimage-emulator/<yyyymmdd>/<request id>/<w>x<h>-s<seed>-<prompt hash>.png, shaped like
// upstream's <date>/<id>/<name>.png object keys.
const PATH_PATTERN =
  /^\/oss\/zimage-emulator\/\d{8}\/[0-9a-f-]{36}\/(\d{1,5})x(\d{1,5})-s(\d{1,10})-([0-9a-f]{16})\.png$/;

export type ImageUrlRejection = {
  readonly ok: false;
  readonly status: 403 | 404;
  readonly code: 'NoSuchKey' | 'SignatureDoesNotMatch' | 'InvalidAccessKeyId' | 'AccessDenied';
  readonly message: string;
};

export type ImageUrlCheck = { readonly ok: true; readonly key: ImageKey } | ImageUrlRejection;

const NO_SUCH_KEY: ImageUrlRejection = {
  ok: false,
  status: 404,
  code: 'NoSuchKey',
  message: 'The specified key does not exist.',
};
const BAD_ACCESS_KEY_ID: ImageUrlRejection = {
  ok: false,
  status: 403,
  code: 'InvalidAccessKeyId',
  message: 'The OSS Access Key Id you provided does not exist in our records.',
};
const BAD_SIGNATURE: ImageUrlRejection = {
  ok: false,
  status: 403,
  code: 'SignatureDoesNotMatch',
  message:
    'The request signature we calculated does not match the signature you provided. Check your key and signing method.',
};
const EXPIRED: ImageUrlRejection = { ok: false, status: 403, code: 'AccessDenied', message: 'Request has expired.' };

/**
 * Issues and checks OSS-style signed URLs (V1 query signing: base64 HMAC-SHA1 over
 * "GET\n\n\n<Expires>\n<path>"). The secret lives only in this process, so a URL is valid only
 * on the emulator that issued it.
 */
export class ImageUrlSigner {
  constructor(private readonly secret: Buffer) {}

  sign(
    baseUrl: string,
    key: ImageKey,
    requestId: string,
    expiresEpochSeconds: number,
    now: Date,
  ): string {
    const date = now.toISOString().slice(0, 10).replaceAll('-', '');
    const path = `${IMAGE_PATH_PREFIX}${BUCKET_DIR}/${date}/${requestId}/${imageKeyId(key)}.png`;
    const signature = encodeURIComponent(this.#signature(path, String(expiresEpochSeconds)));
    const query = `Expires=${expiresEpochSeconds}&OSSAccessKeyId=${OSS_ACCESS_KEY_ID}&Signature=${signature}`;
    return `${baseUrl}${path}?${query}`;
  }

  /** Checks path, then signature (which covers `Expires`, so it cannot be extended), then expiry. */
  check(pathname: string, query: URLSearchParams, nowMs: number): ImageUrlCheck {
    const match = PATH_PATTERN.exec(pathname);
    const key = match ? toKey(match) : undefined;
    if (!key) return NO_SUCH_KEY;
    const expires = query.get('Expires');
    const signature = query.get('Signature');
    const accessKeyId = query.get('OSSAccessKeyId');
    if (accessKeyId !== null && accessKeyId !== OSS_ACCESS_KEY_ID) return BAD_ACCESS_KEY_ID;
    if (accessKeyId === null || expires === null || signature === null || !/^\d+$/.test(expires)) {
      return BAD_SIGNATURE;
    }
    if (!this.#matches(pathname, expires, signature)) return BAD_SIGNATURE;
    if (nowMs >= Number(expires) * 1000) return EXPIRED;
    return { ok: true, key };
  }

  #signature(path: string, expires: string): string {
    return createHmac('sha1', this.secret).update(`GET\n\n\n${expires}\n${path}`).digest('base64');
  }

  #matches(path: string, expires: string, signature: string): boolean {
    const expected = Buffer.from(this.#signature(path, expires));
    const given = Buffer.from(signature);
    return expected.length === given.length && timingSafeEqual(expected, given);
  }
}

function toKey(match: RegExpExecArray): ImageKey | undefined {
  const [, w, h, s, promptHash] = match;
  const width = Number(w);
  const height = Number(h);
  const seed = Number(s);
  const pixels = width * height;
  if (promptHash === undefined || pixels < MIN_PIXELS || pixels > MAX_PIXELS || seed > MAX_SEED) {
    return undefined;
  }
  return { promptHash, seed, width, height };
}

/**
 * `Expires` for a URL issued at `nowMs`. Rounded down to whole seconds, like OSS's field, so a URL
 * never outlives its TTL (it may expire up to 1 s early).
 */
export function expiresAt(nowMs: number, ttlMs: number): number {
  return Math.floor((nowMs + ttlMs) / 1000);
}
