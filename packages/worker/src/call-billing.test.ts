import { AppError } from '@zimage/shared';
import { describe, expect, it } from 'vitest';
import { billingOfFailure } from './call-billing.js';

describe('billingOfFailure', () => {
  it.each([
    [new AppError('UPSTREAM_THROTTLED', 'throttled'), false, 'released'],
    [new AppError('UPSTREAM_CONTENT_REJECTED', 'rejected'), false, 'released'],
    [new AppError('NETWORK_TIMEOUT', 'headers', { details: { networkCode: 'UND_ERR_HEADERS_TIMEOUT' } }), false, 'maybe'],
    [new AppError('NETWORK_ERROR', 'reset', { details: { networkCode: 'ECONNRESET' } }), false, 'maybe'],
    [new AppError('NETWORK_ERROR', 'refused', { details: { networkCode: 'ECONNREFUSED' } }), false, 'released'],
    [new AppError('NETWORK_TIMEOUT', 'connect', { details: { networkCode: 'UND_ERR_CONNECT_TIMEOUT' } }), false, 'released'],
    [new AppError('UPSTREAM_BAD_RESPONSE', 'no url'), false, 'maybe'],
    [new AppError('UPSTREAM_GATEWAY', '504', { details: { upstreamStatus: 504 } }), false, 'maybe'],
    [new AppError('UPSTREAM_GATEWAY', '502', { details: { upstreamStatus: 502 } }), false, 'released'],
    [new AppError('INTERNAL', 'aborted'), true, 'maybe'],
  ] as const)('settles %s (aborted: %s) as %s', (error, aborted, settlement) => {
    expect(billingOfFailure(error, aborted)).toBe(settlement);
  });
});
