/**
 * The one error catalogue of zimage.
 *
 * Every failure that crosses a boundary (upstream API, network, object storage, payloads, config,
 * Redis) is an `AppError` with a stable `code` from `ERROR_CATALOGUE`. Code everywhere matches on
 * `err.code`, never on `instanceof` or on message text. `docs/errors.md` is the human view of this
 * table; keep the two in step.
 *
 * `retry` says what the worker does with the error:
 * - `never`: the job fails at once (BullMQ `UnrecoverableError`); retrying cannot help and may bill.
 * - `transient`: the job retries with exponential backoff and jitter, up to its attempts.
 * - `throttle`: the job goes back to the queue without using an attempt; the queue slows down.
 * - `account`: the whole account is unusable (bad key, arrears): its work moves to the other
 *   accounts, and when none is left the queue is paused for an operator instead of failing the
 *   backlog one job at a time.
 * - `pause`: a configuration problem that would fail every job the same way after its image was
 *   paid for (an unexpected image host, a download cap too low, an answer we cannot parse): the
 *   queue is paused and the job keeps its checkpoint, so after the fix only the download is redone.
 */

export type RetryPolicy = 'never' | 'transient' | 'throttle' | 'account' | 'pause';

export interface ErrorSpec {
  /** What the worker does with it. */
  readonly retry: RetryPolicy;
  /** HTTP status when the error is reported by our own HTTP API. */
  readonly httpStatus: number;
  /** One sentence: what happened. */
  readonly summary: string;
  /** What an operator should do about it. */
  readonly action: string;
}

export const ERROR_CATALOGUE = {
  // ── input we were given ─────────────────────────────────────────────────────────────────────
  REQUEST_INVALID: {
    retry: 'never',
    httpStatus: 400,
    summary: 'A job request failed validation (prompt, size, seed, key, metadata, webhook, ...).',
    action: 'Fix the field named in the error; nothing was enqueued.',
  },
  BATCH_INVALID: {
    retry: 'never',
    httpStatus: 400,
    summary: 'One or more rows of a batch file are invalid; every bad row is listed with its line.',
    action: 'Fix the listed rows, or pass --skip-invalid to enqueue the valid rows only.',
  },
  IDEMPOTENCY_CONFLICT: {
    retry: 'never',
    httpStatus: 409,
    summary: 'The idempotency key was already used for a different request.',
    action: 'Use a new idempotency key for a different request.',
  },
  ROUTE_NOT_FOUND: {
    retry: 'never',
    httpStatus: 404,
    summary: 'No such HTTP API endpoint (or method).',
    action: 'Check the path against GET /openapi.json.',
  },
  UNAUTHORIZED: {
    retry: 'never',
    httpStatus: 401,
    summary: 'The HTTP API request has no valid bearer token.',
    action: 'Send `Authorization: Bearer <token>` with one of ZIMAGE_API_TOKENS.',
  },
  FORBIDDEN: {
    retry: 'never',
    httpStatus: 403,
    summary: "The request's token is a tenant's (ZIMAGE_API_TENANT_TOKENS): it may enqueue and read its own jobs and batches only.",
    action: 'Use an operator token (ZIMAGE_API_TOKENS) for budgets, weights, bulk operations, schedules and the pages.',
  },
  PAYLOAD_TOO_LARGE: {
    retry: 'never',
    httpStatus: 413,
    summary: 'The request body is larger than the API accepts (or a batch has more than 100,000 items).',
    action: 'Split the batch, or raise ZIMAGE_API_MAX_BODY_BYTES.',
  },
  UNSUPPORTED_MEDIA_TYPE: {
    retry: 'never',
    httpStatus: 415,
    summary: 'The request body has a content type the endpoint does not read.',
    action: 'Use application/json (jobs, batches), application/x-ndjson or text/csv (batches).',
  },
  IDEMPOTENCY_IN_PROGRESS: {
    retry: 'never',
    httpStatus: 409,
    summary: 'A request with the same Idempotency-Key is still being processed.',
    action: 'Retry the same request in a moment: it will return the original response.',
  },
  JOB_CANCELLED: {
    retry: 'never',
    httpStatus: 409,
    summary: 'The job was cancelled (DELETE /v1/jobs/:id or a batch cancel); a request in flight was aborted.',
    action: 'None; enqueue it again to generate it after all.',
  },
  JOB_NOT_CANCELLABLE: {
    retry: 'never',
    httpStatus: 409,
    summary: 'The job has already finished (succeeded, failed, expired or cancelled).',
    action: 'None.',
  },
  WAIT_TIMEOUT: {
    retry: 'never',
    httpStatus: 504,
    summary: 'A wait for a job or batch (waitForJob, waitForBatch, --watch) ran out of time before it finished.',
    action: 'The work is still queued or running: wait again, or check that a worker is connected (zimage status).',
  },
  SCHEDULE_INVALID: {
    retry: 'never',
    httpStatus: 400,
    summary: 'A schedule (or a pipelines file) is invalid: cron expression, time zone, interval or what a tick creates.',
    action: 'Fix the field named in the error; nothing was changed.',
  },
  SCHEDULE_NOT_FOUND: {
    retry: 'never',
    httpStatus: 404,
    summary: 'No schedule with that id exists.',
    action: 'Check the id (`GET /v1/schedules`).',
  },
  PAYLOAD_INVALID: {
    retry: 'never',
    httpStatus: 500,
    summary: 'A job in Redis does not match the job schema (written by other or older code).',
    action: 'Inspect the job data; re-enqueue it through the producer.',
  },
  JOB_STALLED: {
    retry: 'never',
    httpStatus: 500,
    summary: 'The job stalled (its worker died or lost its lock) more often than allowed, so BullMQ failed it.',
    action: 'Look for crashing or overloaded workers; enqueue it again. A paid image it held is kept in its checkpoint.',
  },
  JOB_EXPIRED: {
    retry: 'never',
    httpStatus: 410,
    summary: 'The job was not started before its deadline; it was never sent upstream or billed.',
    action: 'None, or enqueue it again with a later deadline.',
  },
  JOB_NOT_FOUND: {
    retry: 'never',
    httpStatus: 404,
    summary: 'No job or batch with that id exists (or it was removed by retention).',
    action: 'Check the id.',
  },
  BUDGET_NOT_FOUND: {
    retry: 'never',
    httpStatus: 404,
    summary: 'No budget with that id exists.',
    action: 'Check the id (`zimage budgets` lists them).',
  },
  USAGE_INVALID: {
    retry: 'never',
    httpStatus: 400,
    summary: 'The command line is not one zimage takes: an unknown command or option, a missing argument or value.',
    action: 'Run `zimage --help` (or `zimage COMMAND --help`) for what each command takes; nothing was done.',
  },
  CONFIG_INVALID: {
    retry: 'never',
    httpStatus: 500,
    summary: 'An environment variable or option is invalid; every problem is listed by name.',
    action: 'Fix the named variables and restart.',
  },

  // ── upstream (DashScope) answers, classified by its `code` ─────────────────────────────────
  UPSTREAM_INVALID_PARAMETER: {
    retry: 'never',
    httpStatus: 422,
    summary: 'DashScope rejected the request body (InvalidParameter, BadRequest.*).',
    action: 'Usually a bug or a contract change: report it with the upstream request id.',
  },
  UPSTREAM_CONTENT_REJECTED: {
    retry: 'never',
    httpStatus: 422,
    summary: 'Content moderation rejected the prompt or image (DataInspectionFailed, CustomRoleBlocked).',
    action: 'Rephrase the prompt. Not billed.',
  },
  UPSTREAM_IP_INFRINGEMENT: {
    retry: 'never',
    httpStatus: 422,
    summary: 'The prompt is suspected of IP infringement (IPInfringementSuspect).',
    action: 'Rephrase the prompt without protected names or characters. Not billed.',
  },
  UPSTREAM_AUTH_INVALID: {
    retry: 'account',
    httpStatus: 502,
    summary: 'The API key is invalid, or belongs to the other region (InvalidApiKey, NOT AUTHORIZED).',
    action: 'Check DASHSCOPE_API_KEY and DASHSCOPE_REGION, then `zimage resume`.',
  },
  UPSTREAM_ACCESS_DENIED: {
    retry: 'account',
    httpStatus: 502,
    summary: 'The account or workspace may not use the model (AccessDenied*, Model.AccessDenied, Workspace.AccessDenied).',
    action: 'Activate Model Studio / authorise the model for the workspace, then `zimage resume`.',
  },
  UPSTREAM_BILLING: {
    retry: 'account',
    httpStatus: 502,
    summary: 'The account is in arrears or has not purchased the model (Arrearage, *BillOverdue, CommodityNotPurchased).',
    action: 'Settle the account in the Alibaba Cloud console, then `zimage resume`.',
  },
  UPSTREAM_FREE_QUOTA_EXHAUSTED: {
    retry: 'account',
    httpStatus: 502,
    summary: 'The free quota is used up and pay-as-you-go is off (AllocationQuota.FreeTierOnly, "Free allocated quota exceeded").',
    action: 'Turn off "free tier only" or enable billing, then `zimage resume`.',
  },
  UPSTREAM_MODEL_NOT_FOUND: {
    retry: 'account',
    httpStatus: 502,
    summary: 'The model or workspace does not exist at this endpoint (ModelNotFound, WorkSpaceNotFound, NotFound, InvalidParameter "Model not exist.").',
    action: 'The queue is paused (every job would fail the same way). Check DASHSCOPE_REGION / DASHSCOPE_BASE_URL and that the workspace has z-image-turbo, then `zimage resume`.',
  },
  UPSTREAM_OUTAGE: {
    retry: 'pause',
    httpStatus: 503,
    summary: 'Consecutive identical upstream failures from different jobs opened the circuit breaker: the upstream is down for everyone, not for one job.',
    action: 'None: the account cools down and half-open probes resume it; jobs keep their attempts. With every account open the queue is paused until a probe succeeds (or `zimage resume`).',
  },
  UPSTREAM_THROTTLED: {
    retry: 'throttle',
    httpStatus: 503,
    summary: 'The account is over its request rate (Throttling, Throttling.RateQuota, Throttling.BurstRate, Throttling.AllocationQuota).',
    action: 'None: jobs wait and the queue slows down. If constant, lower ZIMAGE_RPM.',
  },
  UPSTREAM_UNAVAILABLE: {
    retry: 'transient',
    httpStatus: 503,
    summary: 'The model is overloaded or unavailable (ModelServingError, ModelUnavailable, HTTP 503).',
    action: 'None: retried with backoff. If it persists, check the Alibaba Cloud status page.',
  },
  UPSTREAM_INTERNAL: {
    retry: 'transient',
    httpStatus: 502,
    summary: 'DashScope failed internally (InternalError*, SystemError, ModelServiceFailed, RequestTimeOut, RewriteFailed).',
    action: 'None: retried a limited number of times. Report persistent ones with the request id.',
  },
  UPSTREAM_GATEWAY: {
    retry: 'transient',
    httpStatus: 502,
    summary: 'A proxy in front of DashScope failed (HTTP 502/504, often a non-JSON body).',
    action: 'None: retried with backoff.',
  },
  UPSTREAM_BAD_RESPONSE: {
    retry: 'pause',
    httpStatus: 502,
    summary: 'DashScope answered 200 without a usable image URL, or with a body we cannot parse (maybe billed).',
    action: 'The queue is paused: retrying would pay again for every job. Report it with the request id (the contract may have changed), then `zimage resume`.',
  },
  UPSTREAM_REJECTED: {
    retry: 'never',
    httpStatus: 502,
    summary: 'DashScope answered with an error code we do not know and a 4xx status.',
    action: 'Read the upstream code and message in the failure; report it so it can be classified.',
  },

  // ── network ────────────────────────────────────────────────────────────────────────────────
  NETWORK_TIMEOUT: {
    retry: 'transient',
    httpStatus: 504,
    summary: 'A connection or response timed out (the upstream may still have billed the image).',
    action: 'None: retried. Persistent timeouts: check connectivity to the region.',
  },
  NETWORK_ERROR: {
    retry: 'transient',
    httpStatus: 502,
    summary: 'The connection failed or was reset (ECONNRESET, ECONNREFUSED, socket errors).',
    action: 'None: retried. Persistent ones: check DNS, proxies and DASHSCOPE_BASE_URL.',
  },

  // ── the generated image ────────────────────────────────────────────────────────────────────
  IMAGE_URL_EXPIRED: {
    retry: 'transient',
    httpStatus: 502,
    summary: 'The temporary image URL answered 403/404 after its Expires time (or on the last attempt): the image is generated again (billed again).',
    action: 'None. Frequent ones mean jobs wait too long between generation and download.',
  },
  IMAGE_HOST_NOT_ALLOWED: {
    retry: 'pause',
    httpStatus: 502,
    summary: 'The image URL points at a host outside ZIMAGE_IMAGE_HOSTS, or is not https on port 443.',
    action: 'The queue is paused (every job would pay and fail the same way). If the host is legitimate, add it to ZIMAGE_IMAGE_HOSTS, then `zimage resume`.',
  },
  IMAGE_TOO_LARGE: {
    retry: 'pause',
    httpStatus: 502,
    summary: 'The image is larger than the download cap.',
    action: 'The queue is paused. Raise ZIMAGE_MAX_IMAGE_BYTES if the size is expected, then `zimage resume`.',
  },
  IMAGE_INVALID: {
    retry: 'transient',
    httpStatus: 502,
    summary: 'The downloaded bytes are not a PNG, or its size differs from the one the API reported.',
    action: 'None: the download is retried. Persistent ones: report with the request id.',
  },
  IMAGE_DOWNLOAD_FAILED: {
    retry: 'transient',
    httpStatus: 502,
    summary: 'The image download failed (an unexpected status, or 403/404 before the URL expires).',
    action: 'None: the download is retried (not the generation).',
  },

  // ── storage ────────────────────────────────────────────────────────────────────────────────
  STORAGE_KEY_INVALID: {
    retry: 'never',
    httpStatus: 400,
    summary: 'An object key is unsafe or malformed (.., absolute path, control characters, too long).',
    action: 'Fix the key or key template.',
  },
  STORAGE_WRITE_FAILED: {
    retry: 'transient',
    httpStatus: 503,
    summary: 'Writing the image to storage failed; the paid image is kept and only the write is retried.',
    action: 'Check STORAGE_URL, credentials, bucket and disk space.',
  },
  STORAGE_REFUSED: {
    retry: 'pause',
    httpStatus: 503,
    summary: 'Storage refuses every write (S3 403/AccessDenied, NoSuchBucket; disk full, read-only, permission denied), or writes failed several times in a row across the fleet.',
    action: 'The queue is paused and paid images are kept. Fix the bucket, credentials or disk; the fleet resumes by itself when a probe write succeeds (or `zimage resume`).',
  },
  STORAGE_UNAVAILABLE: {
    retry: 'transient',
    httpStatus: 503,
    summary: 'The object store could not be reached or read.',
    action: 'Check STORAGE_URL, AWS_* settings and the storage service.',
  },

  // ── webhooks (retry here means the delivery's retry schedule, not a generation) ─────────────
  WEBHOOK_URL_REFUSED: {
    retry: 'never',
    httpStatus: 400,
    summary:
      'A webhook URL is not http(s), or its host resolves to a loopback, private, link-local, unique-local or cloud-metadata address (SSRF guard).',
    action: 'Use a public http(s) URL; for development list the host in ZIMAGE_WEBHOOK_ALLOWED_HOSTS.',
  },
  WEBHOOK_DELIVERY_FAILED: {
    retry: 'transient',
    httpStatus: 502,
    summary: 'A webhook endpoint answered with a non-2xx status (redirects included), timed out or could not be reached.',
    action: 'Fix the receiver; the delivery is retried on its schedule, then dead-lettered (`zimage webhooks replay`).',
  },
  WEBHOOK_ENDPOINT_DISABLED: {
    retry: 'never',
    httpStatus: 410,
    summary: 'The webhook endpoint is disabled (it answered 410 Gone, or an operator disabled it); deliveries to it are dead-lettered.',
    action: 'Fix the receiver, run `zimage webhooks enable ENDPOINT`, then `zimage webhooks replay --endpoint ENDPOINT --since TIME`.',
  },
  WEBHOOK_SECRET_MISSING: {
    retry: 'transient',
    httpStatus: 500,
    summary:
      'The worker that took a delivery cannot sign it: no ZIMAGE_WEBHOOK_SECRET (per-job webhooks), or the endpoint is not in its ZIMAGE_WEBHOOK_ENDPOINTS. Retried on the schedule (another worker may have it).',
    action: 'Give every worker running the dispatcher the same webhook configuration; replay what was dead-lettered.',
  },
  EVENT_NOT_FOUND: {
    retry: 'never',
    httpStatus: 404,
    summary: 'No event or webhook delivery with that id is known.',
    action: 'Check the event id (evt_…); events older than the stream bound or the retention are gone.',
  },

  // ── infrastructure ─────────────────────────────────────────────────────────────────────────
  REDIS_UNAVAILABLE: {
    retry: 'transient',
    httpStatus: 503,
    summary: 'Redis could not be reached at REDIS_URL.',
    action: 'Start Redis or fix REDIS_URL.',
  },
  INTERNAL: {
    retry: 'transient',
    httpStatus: 500,
    summary: 'An unexpected error (a bug).',
    action: 'Report it with the log line; the job is retried.',
  },
} as const satisfies Record<string, ErrorSpec>;

export type ErrorCode = keyof typeof ERROR_CATALOGUE;

export interface AppErrorOptions {
  cause?: unknown;
  /** Extra structured facts (upstream code, request id, field paths, ...). Never secrets. */
  details?: Record<string, unknown>;
  /** Server-suggested wait before retrying, in ms (Retry-After), where known. */
  retryAfterMs?: number;
  /** What to do, where the catalogue's advice for the code does not fit this case. */
  action?: string;
}

export class AppError extends Error {
  readonly code: ErrorCode;
  readonly retry: RetryPolicy;
  readonly details: Record<string, unknown>;
  readonly retryAfterMs: number | undefined;
  /** What to do: the catalogue's advice for the code, or this case's own. */
  readonly action: string;

  constructor(code: ErrorCode, message: string, options: AppErrorOptions = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'AppError';
    this.code = code;
    this.retry = ERROR_CATALOGUE[code].retry;
    this.details = options.details ?? {};
    this.retryAfterMs = options.retryAfterMs;
    this.action = options.action ?? ERROR_CATALOGUE[code].action;
  }

  get httpStatus(): number {
    return ERROR_CATALOGUE[this.code].httpStatus;
  }
}

export function isAppError(value: unknown): value is AppError {
  return (
    value instanceof AppError ||
    (value instanceof Error && value.name === 'AppError' && typeof (value as { code?: unknown }).code === 'string')
  );
}

/** Turns anything thrown into an `Error`, keeping the original as `cause` (never a string). */
export function coerceError(value: unknown): Error {
  if (value instanceof Error) return value;
  return new Error(typeof value === 'string' ? value : `Non-error thrown: ${safeStringify(value)}`, {
    cause: value,
  });
}

/** Wraps an unknown error as an `AppError`, keeping AppErrors as they are. */
export function toAppError(value: unknown, fallback: ErrorCode = 'INTERNAL'): AppError {
  if (isAppError(value)) return value;
  const error = coerceError(value);
  return new AppError(fallback, error.message, { cause: error });
}

function safeStringify(value: unknown): string {
  try {
    return JSON.stringify(value) ?? String(value);
  } catch {
    return String(value);
  }
}
