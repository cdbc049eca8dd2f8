import { describe, expect, it } from 'vitest';
import type { ErrorCode, RetryPolicy } from '@zimage/shared';
import { classifyUpstreamFailure, errorCodeForStatus, type UpstreamFailure } from './classify-upstream-error.js';

function failure(patch: Partial<UpstreamFailure>): UpstreamFailure {
  return { status: 400, code: undefined, message: 'upstream message', requestId: 'req-1', retryAfterMs: undefined, ...patch };
}

describe('classifyUpstreamFailure by DashScope code (reference §3.2)', () => {
  const table: Array<[status: number, code: string, expected: ErrorCode, retry: RetryPolicy]> = [
    [400, 'InvalidParameter', 'UPSTREAM_INVALID_PARAMETER', 'never'],
    [400, 'BadRequest.EmptyInput', 'UPSTREAM_INVALID_PARAMETER', 'never'],
    [400, 'BadRequest.EmptyModel', 'UPSTREAM_INVALID_PARAMETER', 'never'],
    [400, 'BadRequest.IllegalInput', 'UPSTREAM_INVALID_PARAMETER', 'never'],
    [400, 'DataInspectionFailed', 'UPSTREAM_CONTENT_REJECTED', 'never'],
    [400, 'data_inspection_failed', 'UPSTREAM_CONTENT_REJECTED', 'never'],
    [400, 'CustomRoleBlocked', 'UPSTREAM_CONTENT_REJECTED', 'never'],
    [400, 'IPInfringementSuspect', 'UPSTREAM_IP_INFRINGEMENT', 'never'],
    [400, 'Arrearage', 'UPSTREAM_BILLING', 'account'],
    [429, 'CommodityNotPurchased', 'UPSTREAM_BILLING', 'account'],
    [429, 'PrepaidBillOverdue', 'UPSTREAM_BILLING', 'account'],
    [429, 'PostpaidBillOverdue', 'UPSTREAM_BILLING', 'account'],
    [401, 'InvalidApiKey', 'UPSTREAM_AUTH_INVALID', 'account'],
    [401, 'invalid_api_key', 'UPSTREAM_AUTH_INVALID', 'account'],
    [401, 'NOT AUTHORIZED', 'UPSTREAM_AUTH_INVALID', 'account'],
    [403, 'AccessDenied', 'UPSTREAM_ACCESS_DENIED', 'account'],
    [403, 'AccessDenied.Unpurchased', 'UPSTREAM_ACCESS_DENIED', 'account'],
    [403, 'Model.AccessDenied', 'UPSTREAM_ACCESS_DENIED', 'account'],
    [403, 'Workspace.AccessDenied', 'UPSTREAM_ACCESS_DENIED', 'account'],
    [403, 'AllocationQuota.FreeTierOnly', 'UPSTREAM_FREE_QUOTA_EXHAUSTED', 'account'],
    [404, 'ModelNotFound', 'UPSTREAM_MODEL_NOT_FOUND', 'account'],
    [404, 'model_not_found', 'UPSTREAM_MODEL_NOT_FOUND', 'account'],
    [404, 'WorkSpaceNotFound', 'UPSTREAM_MODEL_NOT_FOUND', 'account'],
    [404, 'NotFound', 'UPSTREAM_MODEL_NOT_FOUND', 'account'],
    [429, 'Throttling', 'UPSTREAM_THROTTLED', 'throttle'],
    [429, 'Throttling.RateQuota', 'UPSTREAM_THROTTLED', 'throttle'],
    [429, 'limit_requests', 'UPSTREAM_THROTTLED', 'throttle'],
    [429, 'Throttling.BurstRate', 'UPSTREAM_THROTTLED', 'throttle'],
    [429, 'limit_burst_rate', 'UPSTREAM_THROTTLED', 'throttle'],
    [500, 'InternalError', 'UPSTREAM_INTERNAL', 'transient'],
    [500, 'internal_error', 'UPSTREAM_INTERNAL', 'transient'],
    [500, 'InternalError.Algo', 'UPSTREAM_INTERNAL', 'transient'],
    [500, 'InternalError.Upload', 'UPSTREAM_INTERNAL', 'transient'],
    [500, 'InternalError.Timeout', 'UPSTREAM_INTERNAL', 'transient'],
    [500, 'SystemError', 'UPSTREAM_INTERNAL', 'transient'],
    [500, 'ModelServiceFailed', 'UPSTREAM_INTERNAL', 'transient'],
    [500, 'RequestTimeOut', 'UPSTREAM_INTERNAL', 'transient'],
    [500, 'RewriteFailed', 'UPSTREAM_INTERNAL', 'transient'],
    [503, 'ModelServingError', 'UPSTREAM_UNAVAILABLE', 'transient'],
    [503, 'ModelUnavailable', 'UPSTREAM_UNAVAILABLE', 'transient'],
  ];

  it.each(table)('HTTP %i %s → %s (%s)', (status, code, expected, retry) => {
    const error = classifyUpstreamFailure(failure({ status, code }));
    expect(error.code).toBe(expected);
    expect(error.retry).toBe(retry);
  });

  it('treats Throttling.AllocationQuota "Free allocated quota exceeded." as an account problem', () => {
    const error = classifyUpstreamFailure(failure({ status: 429, code: 'Throttling.AllocationQuota', message: 'Free allocated quota exceeded.' }));
    expect(error.code).toBe('UPSTREAM_FREE_QUOTA_EXHAUSTED');
    expect(error.retry).toBe('account');
    expect(error.retryAfterMs).toBeUndefined();
  });

  it('treats any other Throttling.AllocationQuota as a throttle that waits 60 s', () => {
    const error = classifyUpstreamFailure(
      failure({ status: 429, code: 'Throttling.AllocationQuota', message: 'Allocated quota exceeded, please increase your quota limit.' }),
    );
    expect(error.code).toBe('UPSTREAM_THROTTLED');
    expect(error.retry).toBe('throttle');
    expect(error.retryAfterMs).toBe(60_000);
  });

  it('prefers a Retry-After the server sent over the 60 s allocation-quota wait', () => {
    const error = classifyUpstreamFailure(failure({ status: 429, code: 'Throttling.AllocationQuota', retryAfterMs: 5_000 }));
    expect(error.retryAfterMs).toBe(5_000);
  });

  it('reads InvalidParameter "Model not exist." as a missing model (stops the fleet), not as a bad job', () => {
    const error = classifyUpstreamFailure(failure({ status: 400, code: 'InvalidParameter', message: 'Model not exist.' }));
    expect([error.code, error.retry]).toEqual(['UPSTREAM_MODEL_NOT_FOUND', 'account']);
    expect(classifyUpstreamFailure(failure({ status: 400, code: 'InvalidParameter', message: 'num_images_per_prompt must be 1' })).code).toBe('UPSTREAM_INVALID_PARAMETER');
  });

  it('passes Retry-After through for other codes and adds none of its own', () => {
    expect(classifyUpstreamFailure(failure({ status: 429, code: 'Throttling.RateQuota', retryAfterMs: 2_000 })).retryAfterMs).toBe(2_000);
    expect(classifyUpstreamFailure(failure({ status: 429, code: 'Throttling.RateQuota' })).retryAfterMs).toBeUndefined();
  });

  it.each([
    [400, 'Throttling.RateQuota', 'UPSTREAM_THROTTLED'],
    [500, 'InvalidParameter', 'UPSTREAM_INVALID_PARAMETER'],
    [429, 'DataInspectionFailed', 'UPSTREAM_CONTENT_REJECTED'],
    [200, 'InvalidApiKey', 'UPSTREAM_AUTH_INVALID'],
  ] as const)('lets the code win over the status: HTTP %i %s → %s', (status, code, expected) => {
    expect(classifyUpstreamFailure(failure({ status, code })).code).toBe(expected);
  });

  it.each([
    [429, 'UPSTREAM_THROTTLED', 'throttle'],
    [401, 'UPSTREAM_AUTH_INVALID', 'account'],
    [403, 'UPSTREAM_ACCESS_DENIED', 'account'],
    [404, 'UPSTREAM_MODEL_NOT_FOUND', 'account'],
    [502, 'UPSTREAM_GATEWAY', 'transient'],
    [504, 'UPSTREAM_GATEWAY', 'transient'],
    [503, 'UPSTREAM_UNAVAILABLE', 'transient'],
    [500, 'UPSTREAM_INTERNAL', 'transient'],
    [507, 'UPSTREAM_INTERNAL', 'transient'],
    [418, 'UPSTREAM_REJECTED', 'never'],
    [400, 'UPSTREAM_REJECTED', 'never'],
  ] as const)('falls back to HTTP %i → %s (%s) for an unknown or missing code', (status, expected, retry) => {
    for (const code of [undefined, 'Unknown', 'SomethingNew.Invented', '']) {
      const error = classifyUpstreamFailure(failure({ status, code }));
      expect(error.code).toBe(expected);
      expect(error.retry).toBe(retry);
    }
    expect(errorCodeForStatus(status)).toBe(expected);
  });

  it('carries the upstream status, code and request id in details, and both in the message', () => {
    const error = classifyUpstreamFailure(
      failure({ status: 400, code: 'DataInspectionFailed', message: 'Input data may contain inappropriate content.', requestId: 'abf1645b' }),
    );
    expect(error.details).toEqual({ upstreamStatus: 400, upstreamCode: 'DataInspectionFailed', requestId: 'abf1645b' });
    expect(error.message).toContain('DataInspectionFailed');
    expect(error.message).toContain('HTTP 400');
    expect(error.message).toContain('Input data may contain inappropriate content.');
  });

  it('says only the status when there is no code', () => {
    const error = classifyUpstreamFailure(failure({ status: 502, code: undefined, message: '<html>Bad Gateway</html>', requestId: undefined }));
    expect(error.message).toBe('DashScope HTTP 502: <html>Bad Gateway</html>');
    expect(error.details).toMatchObject({ upstreamStatus: 502, upstreamCode: undefined, requestId: undefined });
  });
});

describe('classifyUpstreamFailure with codes that are Object.prototype names', () => {
  it.each(['toString', 'constructor', '__proto__', 'hasOwnProperty'])('treats %s as an unknown code', (code) => {
    const error = classifyUpstreamFailure({ status: 418, code, message: 'x', requestId: undefined, retryAfterMs: undefined });
    expect(error.code).toBe('UPSTREAM_REJECTED');
    expect(error.retry).toBe('never');
  });
});
