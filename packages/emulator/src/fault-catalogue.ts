/**
 * Every failure the emulator can inject, by name.
 *
 * Error kinds reproduce a documented DashScope error (status, code and message from
 * reference/dashscope-api.md §3.2). The other kinds model transport failures the real service
 * (or the proxy in front of it) can produce. `afterLatency` says whether the failure shows up
 * only after the usual generation latency (the work started, then failed) or at once (a check
 * done before any work, such as billing or capacity).
 */
export type FaultEffect =
  | {
      readonly type: 'error';
      readonly status: number;
      readonly code: string;
      readonly message: string;
      readonly afterLatency: boolean;
    }
  /** Destroy the socket without any response; nothing is billed. */
  | { readonly type: 'drop' }
  /** Generate and bill the image, then destroy the socket: a client timeout on a billed call. */
  | { readonly type: 'dropAfterBilling' }
  /** A proxy answering with an HTML page instead of DashScope JSON. */
  | { readonly type: 'gateway'; readonly status: 502 | 504 }
  /** Wait `faults.slowMs` instead of the normal latency, then succeed. */
  | { readonly type: 'slow' };

export type ErrorFault = Extract<FaultEffect, { readonly type: 'error' }>;

const error = (status: number, code: string, message: string, afterLatency: boolean): ErrorFault => ({
  type: 'error',
  status,
  code,
  message,
  afterLatency,
});

export const FAULT_CATALOGUE = {
  InternalError: error(
    500,
    'InternalError',
    // "occured" is the upstream spelling.
    'An internal error has occured, please try again later or contact service support.',
    true,
  ),
  'InternalError.Algo': error(500, 'InternalError.Algo', 'inference internal error.', true),
  'InternalError.Upload': error(500, 'InternalError.Upload', 'Failed to upload result.', true),
  SystemError: error(500, 'SystemError', 'An system error has occured, please try again later.', true),
  RequestTimeOut: error(500, 'RequestTimeOut', 'Request timed out, please try again later.', true),
  RewriteFailed: error(500, 'RewriteFailed', 'Failed to rewrite content for prompt.', true),
  ModelUnavailable: error(503, 'ModelUnavailable', 'Model is unavailable, please try again later.', false),
  ModelServingError: error(
    503,
    'ModelServingError',
    'Too many requests. Your requests are being throttled due to system capacity limits. Please try again later.',
    false,
  ),
  Arrearage: error(
    400,
    'Arrearage',
    'Access denied, please make sure your account is in good standing.',
    false,
  ),
  // What the API answers when the model is unknown at the endpoint (a renamed or withdrawn model,
  // or the wrong region): nothing a retry can fix, so it models an outage only an operator ends.
  // Answered before any work, like the real check on the request's `model`.
  ModelNotExist: error(400, 'InvalidParameter', 'Model not exist.', false),
  InvalidApiKey: error(401, 'InvalidApiKey', 'Invalid API-key provided.', false),
  AccessDenied: error(403, 'AccessDenied', 'Access denied.', false),
  Throttling: error(429, 'Throttling', 'Requests throttling triggered.', false),
  'Throttling.RateQuota': error(
    429,
    'Throttling.RateQuota',
    'Requests rate limit exceeded, please try again later.',
    false,
  ),
  'Throttling.BurstRate': error(
    429,
    'Throttling.BurstRate',
    'Request rate increased too quickly. To ensure system stability, please adjust your client ' +
      'logic to scale requests more smoothly over time.',
    false,
  ),
  'Throttling.AllocationQuota': error(
    429,
    'Throttling.AllocationQuota',
    'Allocated quota exceeded, please increase your quota limit.',
    false,
  ),
  // Injected moderation failures model the check on the generated image (the prompt check is
  // driven by trigger words), hence "Output data" and the latency before it.
  DataInspectionFailed: error(
    400,
    'DataInspectionFailed',
    'Output data may contain inappropriate content.',
    true,
  ),
  IPInfringementSuspect: error(
    400,
    'IPInfringementSuspect',
    'Input data is suspected of being involved in IP infringement.',
    false,
  ),
  drop: { type: 'drop' },
  dropAfterBilling: { type: 'dropAfterBilling' },
  gateway502: { type: 'gateway', status: 502 },
  gateway504: { type: 'gateway', status: 504 },
  slow: { type: 'slow' },
} as const satisfies Record<string, FaultEffect>;

export type FaultKind = keyof typeof FAULT_CATALOGUE;

/** A scripted step: a fault, or `'none'` to let that request through untouched (rates skipped). */
export type FaultStep = FaultKind | 'none';

export const FAULT_KINDS = Object.keys(FAULT_CATALOGUE) as readonly FaultKind[];

export function isFaultKind(value: unknown): value is FaultKind {
  return typeof value === 'string' && Object.hasOwn(FAULT_CATALOGUE, value);
}
