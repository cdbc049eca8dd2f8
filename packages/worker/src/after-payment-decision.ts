/**
 * What to do when downloading or storing a paid image failed. Pure, so each rule has a unit test.
 * The rule above all: a paid image is never given up. Only an image that no longer exists (its
 * link expired) is generated again, which is billed again and bounded by `maxRegenerations`.
 */
import type { AppError, Checkpoint } from '@zimage/shared';

export type AfterPaymentDecision =
  /** The link is gone for good: pay for the image again (counted in `regenerations`). */
  | { kind: 'regenerate' }
  /** The link is gone and the image was generated `maxRegenerations` + 1 times: fail. */
  | { kind: 'give-up'; reason: string }
  /** A fault that would hit every job the same way: stop the fleet, keep the image. */
  | { kind: 'pause' }
  /** Storage failed: counts towards the fleet's storage health, then retried with backoff. */
  | { kind: 'storage-failure' }
  /** Storage can never accept this key: held for an operator. */
  | { kind: 'park-for-operator' }
  /** Anything else (network, a bad download, a 403 before the link's expiry): retried with backoff. */
  | { kind: 'retry' };

/** When an image URL carries no `Expires`, the documented lifetime. */
const DOCUMENTED_URL_LIFETIME_MS = 24 * 3600 * 1000;

export function afterPaymentDecision(error: AppError, checkpoint: Checkpoint, maxRegenerations: number, now = Date.now()): AfterPaymentDecision {
  switch (error.code) {
    case 'IMAGE_URL_EXPIRED': {
      const generated = checkpoint.generated;
      // OSS said so ("Request has expired", NoSuchKey), or our clock is past its Expires. Any
      // other 403 (a clock off, a proxy) keeps the image: the download is retried until then.
      const gone = error.details['confirmed'] === true || (generated !== undefined && urlExpired(generated.imageUrl, generated.at, now));
      if (!gone) return { kind: 'retry' };
      if (checkpoint.regenerations + 1 > maxRegenerations) {
        return { kind: 'give-up', reason: `generated ${checkpoint.regenerations + 1} times already, each link expired before it was stored` };
      }
      return { kind: 'regenerate' };
    }
    case 'STORAGE_KEY_INVALID':
      return { kind: 'park-for-operator' };
    case 'STORAGE_REFUSED':
    case 'STORAGE_WRITE_FAILED':
    case 'STORAGE_UNAVAILABLE':
      return { kind: 'storage-failure' };
    default:
      return error.retry === 'pause' ? { kind: 'pause' } : { kind: 'retry' };
  }
}

/** Past its `Expires` (epoch seconds, OSS-style), or past the documented 24 h without one. */
export function urlExpired(imageUrl: string, generatedAt: number, now = Date.now()): boolean {
  let expires: number | undefined;
  try {
    const value = new URL(imageUrl).searchParams.get('Expires');
    if (value && /^\d+$/.test(value)) expires = Number(value) * 1000;
  } catch {
    // an unparseable URL falls back to the documented lifetime
  }
  return now >= (expires ?? generatedAt + DOCUMENTED_URL_LIFETIME_MS);
}
