/**
 * Classifies a failed upstream call, as a table: DashScope `code` first, HTTP status second
 * (statuses drift — `Throttling.RateQuota` has been seen as a 400 — codes do not), and network
 * error codes for calls that never got an answer. Reference: dashscope-api.md §3.2.
 */
import { AppError, type ErrorCode } from '@zimage/shared';

export const UPSTREAM_CODE_TABLE: Readonly<Record<string, ErrorCode>> = {
  InvalidParameter: 'UPSTREAM_INVALID_PARAMETER',
  BadRequest: 'UPSTREAM_INVALID_PARAMETER',
  'BadRequest.EmptyInput': 'UPSTREAM_INVALID_PARAMETER',
  'BadRequest.EmptyModel': 'UPSTREAM_INVALID_PARAMETER',
  'BadRequest.IllegalInput': 'UPSTREAM_INVALID_PARAMETER',
  DataInspectionFailed: 'UPSTREAM_CONTENT_REJECTED',
  data_inspection_failed: 'UPSTREAM_CONTENT_REJECTED',
  CustomRoleBlocked: 'UPSTREAM_CONTENT_REJECTED',
  IPInfringementSuspect: 'UPSTREAM_IP_INFRINGEMENT',
  Arrearage: 'UPSTREAM_BILLING',
  CommodityNotPurchased: 'UPSTREAM_BILLING',
  PrepaidBillOverdue: 'UPSTREAM_BILLING',
  PostpaidBillOverdue: 'UPSTREAM_BILLING',
  InvalidApiKey: 'UPSTREAM_AUTH_INVALID',
  invalid_api_key: 'UPSTREAM_AUTH_INVALID',
  'NOT AUTHORIZED': 'UPSTREAM_AUTH_INVALID',
  AccessDenied: 'UPSTREAM_ACCESS_DENIED',
  'AccessDenied.Unpurchased': 'UPSTREAM_ACCESS_DENIED',
  'Model.AccessDenied': 'UPSTREAM_ACCESS_DENIED',
  'Workspace.AccessDenied': 'UPSTREAM_ACCESS_DENIED',
  'AllocationQuota.FreeTierOnly': 'UPSTREAM_FREE_QUOTA_EXHAUSTED',
  ModelNotFound: 'UPSTREAM_MODEL_NOT_FOUND',
  model_not_found: 'UPSTREAM_MODEL_NOT_FOUND',
  WorkSpaceNotFound: 'UPSTREAM_MODEL_NOT_FOUND',
  NotFound: 'UPSTREAM_MODEL_NOT_FOUND',
  Throttling: 'UPSTREAM_THROTTLED',
  'Throttling.RateQuota': 'UPSTREAM_THROTTLED',
  'Throttling.BurstRate': 'UPSTREAM_THROTTLED',
  'Throttling.AllocationQuota': 'UPSTREAM_THROTTLED',
  limit_requests: 'UPSTREAM_THROTTLED',
  limit_burst_rate: 'UPSTREAM_THROTTLED',
  InternalError: 'UPSTREAM_INTERNAL',
  internal_error: 'UPSTREAM_INTERNAL',
  'InternalError.Algo': 'UPSTREAM_INTERNAL',
  'InternalError.Upload': 'UPSTREAM_INTERNAL',
  'InternalError.Timeout': 'UPSTREAM_INTERNAL',
  SystemError: 'UPSTREAM_INTERNAL',
  ModelServiceFailed: 'UPSTREAM_INTERNAL',
  RequestTimeOut: 'UPSTREAM_INTERNAL',
  RewriteFailed: 'UPSTREAM_INTERNAL',
  ModelServingError: 'UPSTREAM_UNAVAILABLE',
  ModelUnavailable: 'UPSTREAM_UNAVAILABLE',
};

/** Same code, different meaning: a throttle that will not clear by waiting. */
const FREE_QUOTA_MESSAGE = /free allocated quota exceeded/i;
/**
 * Same code, different meaning: `InvalidParameter` "Model not exist." is not this job's input but
 * a workspace without the model, the same for every job; it stops the fleet like ModelNotFound.
 */
const MODEL_MISSING_MESSAGE = /model not exist|model does not exist|model not found/i;

/** `Throttling.AllocationQuota` (TPM) is documented to clear after about a minute. */
const ALLOCATION_QUOTA_WAIT_MS = 60_000;

export function errorCodeForStatus(status: number): ErrorCode {
  if (status === 429) return 'UPSTREAM_THROTTLED';
  if (status === 401) return 'UPSTREAM_AUTH_INVALID';
  if (status === 403) return 'UPSTREAM_ACCESS_DENIED';
  if (status === 404) return 'UPSTREAM_MODEL_NOT_FOUND';
  if (status === 502 || status === 504) return 'UPSTREAM_GATEWAY';
  if (status === 503) return 'UPSTREAM_UNAVAILABLE';
  if (status >= 500) return 'UPSTREAM_INTERNAL';
  return 'UPSTREAM_REJECTED';
}

export interface UpstreamFailure {
  status: number;
  code: string | undefined;
  message: string;
  requestId: string | undefined;
  retryAfterMs: number | undefined;
}

export function classifyUpstreamFailure(failure: UpstreamFailure): AppError {
  // Object.hasOwn: an upstream code such as "toString" must not find Object.prototype's.
  const known = failure.code !== undefined && Object.hasOwn(UPSTREAM_CODE_TABLE, failure.code) ? UPSTREAM_CODE_TABLE[failure.code] : undefined;
  // Any Throttling.* we do not know yet is still a throttle, whatever status it came with.
  const throttling = failure.code?.startsWith('Throttling') ? 'UPSTREAM_THROTTLED' : undefined;
  let errorCode: ErrorCode = known ?? throttling ?? errorCodeForStatus(failure.status);
  if (failure.code === 'Throttling.AllocationQuota' && FREE_QUOTA_MESSAGE.test(failure.message)) {
    errorCode = 'UPSTREAM_FREE_QUOTA_EXHAUSTED';
  }
  if (errorCode === 'UPSTREAM_INVALID_PARAMETER' && MODEL_MISSING_MESSAGE.test(failure.message)) errorCode = 'UPSTREAM_MODEL_NOT_FOUND';
  const retryAfterMs =
    failure.retryAfterMs ?? (failure.code === 'Throttling.AllocationQuota' && errorCode === 'UPSTREAM_THROTTLED' ? ALLOCATION_QUOTA_WAIT_MS : undefined);
  const label = failure.code ? `${failure.code} (HTTP ${failure.status})` : `HTTP ${failure.status}`;
  return new AppError(errorCode, `DashScope ${label}: ${failure.message}`, {
    retryAfterMs,
    details: { upstreamStatus: failure.status, upstreamCode: failure.code, requestId: failure.requestId },
  });
}
