import { AppError, type Checkpoint } from '@zimage/shared';
import { describe, expect, it } from 'vitest';
import { afterPaymentDecision } from './after-payment-decision.js';

const NOW = Date.UTC(2026, 11, 1, 12);
const expiresIn = (ms: number) => `https://bucket.oss-ap-southeast-1.aliyuncs.com/img.png?Expires=${Math.floor((NOW + ms) / 1000)}&Signature=x`;
const paid = (imageUrl = expiresIn(3600_000), extra: Partial<Checkpoint> = {}): Checkpoint => ({
  regenerations: 0,
  generated: { imageUrl, usedPrompt: 'p', width: 512, height: 512, at: NOW - 60_000, generateMs: 1 },
  ...extra,
});

describe('afterPaymentDecision: a paid image is never given up', () => {
  it.each(['STORAGE_WRITE_FAILED', 'STORAGE_UNAVAILABLE', 'STORAGE_REFUSED'] as const)('counts %s towards storage health and retries it, however many times it failed', (code) => {
    for (const postFailures of [1, 20, 10_000]) {
      expect(afterPaymentDecision(new AppError(code, 'down'), paid(undefined, { postFailures }), 2, NOW)).toEqual({ kind: 'storage-failure' });
    }
  });

  it.each(['NETWORK_ERROR', 'NETWORK_TIMEOUT', 'IMAGE_INVALID', 'IMAGE_DOWNLOAD_FAILED', 'INTERNAL'] as const)('retries the download after %s without a limit', (code) => {
    expect(afterPaymentDecision(new AppError(code, 'x'), paid(undefined, { postFailures: 10_000 }), 2, NOW)).toEqual({ kind: 'retry' });
  });

  it('parks a key storage can never accept for an operator', () => {
    expect(afterPaymentDecision(new AppError('STORAGE_KEY_INVALID', 'ENAMETOOLONG'), paid(), 2, NOW)).toEqual({ kind: 'park-for-operator' });
  });

  it.each(['IMAGE_HOST_NOT_ALLOWED', 'IMAGE_TOO_LARGE'] as const)('stops the fleet on %s (every job would pay and fail alike)', (code) => {
    expect(afterPaymentDecision(new AppError(code, 'x'), paid(), 2, NOW)).toEqual({ kind: 'pause' });
  });

  it('generates again at once when OSS confirms the link expired, even though our clock says it has not', () => {
    const error = new AppError('IMAGE_URL_EXPIRED', '403', { details: { status: 403, ossCode: 'AccessDenied', confirmed: true } });
    expect(afterPaymentDecision(error, paid(expiresIn(3600_000)), 2, NOW)).toEqual({ kind: 'regenerate' });
  });

  it('keeps the image and retries on an unconfirmed 403 before the link’s Expires, and generates again after it', () => {
    const error = new AppError('IMAGE_URL_EXPIRED', '403', { details: { status: 403, ossCode: 'SignatureDoesNotMatch', confirmed: false } });
    expect(afterPaymentDecision(error, paid(expiresIn(60_000)), 2, NOW)).toEqual({ kind: 'retry' });
    expect(afterPaymentDecision(error, paid(expiresIn(-1_000)), 2, NOW)).toEqual({ kind: 'regenerate' });
  });

  it('gives up only when the link is gone and the image was generated maxRegenerations + 1 times', () => {
    const error = new AppError('IMAGE_URL_EXPIRED', '404', { details: { status: 404, ossCode: 'NoSuchKey', confirmed: true } });
    expect(afterPaymentDecision(error, paid(undefined, { regenerations: 1 }), 2, NOW)).toEqual({ kind: 'regenerate' });
    expect(afterPaymentDecision(error, paid(undefined, { regenerations: 2 }), 2, NOW)).toMatchObject({ kind: 'give-up' });
  });
});
