/**
 * Redis names shared by producers and workers. BullMQ keys live under `{prefix}:{queue}:...`.
 * The prefix is configurable (`ZIMAGE_PREFIX`) so that several deployments can share one Redis.
 */
export const DEFAULT_PREFIX = 'zimage';
export const GENERATE_QUEUE = 'generate';
export const EVENTS_STREAM_SUFFIX = 'events';

export function eventsStreamKey(prefix: string): string {
  return `${prefix}:${EVENTS_STREAM_SUFFIX}`;
}

export function batchKey(prefix: string, batchId: string): string {
  return `${prefix}:batch:${batchId}`;
}

/** Every batch by creation time (a sorted set, scored in ms): `GET /v1/batches`, `zimage batches`. */
export function batchIndexKey(prefix: string): string {
  return `${prefix}:batches`;
}

export function batchResultsKey(prefix: string, batchId: string): string {
  return `${prefix}:batch:${batchId}:results`;
}

/** "This job's terminal event was published" (one per job, whatever the outcome). */
export function emittedMarkerKey(prefix: string, jobId: string): string {
  return `${prefix}:emitted:${jobId}`;
}

export function pauseReasonKey(prefix: string): string {
  return `${prefix}:${GENERATE_QUEUE}:pause-reason`;
}

/** BullMQ queue of webhook deliveries (one job per event and endpoint). */
export const WEBHOOK_QUEUE = 'webhooks';

/** State of a webhook endpoint (disabled after a 410 or by an operator). Never its secret. */
export function webhookEndpointKey(prefix: string, endpointId: string): string {
  return `${prefix}:webhook:endpoint:${endpointId}`;
}

/** Every delivery attempt of one event, to every endpoint (a capped list of JSON records). */
export function webhookAttemptsKey(prefix: string, eventId: string): string {
  return `${prefix}:webhook:attempts:${eventId}`;
}

/** The delivery job ids of one event, so that `zimage webhooks replay EVENT_ID` can find them. */
export function webhookDeliveriesKey(prefix: string, eventId: string): string {
  return `${prefix}:webhook:deliveries:${eventId}`;
}

/** "Cancel this job" (set by the API; read by the worker before each upstream call). */
export function cancelRequestKey(prefix: string, jobId: string): string {
  return `${prefix}:cancel:${jobId}`;
}

/** Pub/sub channel on which the API asks the worker holding an active job to abort it. */
export function cancelChannel(prefix: string): string {
  return `${prefix}:cancel`;
}

/** What a cancelled job looked like, kept after it was removed from the queue (GET /v1/jobs/:id). */
export function cancelledJobKey(prefix: string, jobId: string): string {
  return `${prefix}:cancelled:${jobId}`;
}

/** The ids of a batch's jobs (for cancel and the gallery). */
export function batchJobsKey(prefix: string, batchId: string): string {
  return `${prefix}:batch:${batchId}:jobs`;
}

/** Responses kept for Idempotency-Key replays of API POSTs. */
export function apiIdempotencyKey(prefix: string, digest: string): string {
  return `${prefix}:api:idempotency:${digest}`;
}

/** The consumer group through which webhook dispatchers read the event stream. */
export const WEBHOOK_CONSUMER_GROUP = 'webhooks';

/** Fleet-wide counters for /metrics: terminal jobs by outcome, images stored, spend (event script). */
export function metricsTotalsKey(prefix: string): string {
  return `${prefix}:metrics:totals`;
}

/** Upstream calls by region and code, and their latency histogram (workers, one pipeline per call). */
export function metricsUpstreamKey(prefix: string): string {
  return `${prefix}:metrics:upstream`;
}

/** Each worker's latest governor snapshot (JSON per account), for /metrics. */
export function metricsGovernorKey(prefix: string): string {
  return `${prefix}:metrics:governor`;
}

/** Consecutive storage failures across the fleet (a counter that a success or a quiet minute resets). */
export function storageHealthKey(prefix: string): string {
  return `${prefix}:health:storage`;
}

/** One account's upstream circuit breaker (hash), its failing jobs (set) and its probe lock. */
export function circuitBreakerKey(prefix: string, accountId: string): string {
  return `${prefix}:breaker:${accountId}`;
}

/** Paid images parked for an operator (job id → why, as JSON): a key storage will never accept. */
export function parkedJobsKey(prefix: string): string {
  return `${prefix}:${GENERATE_QUEUE}:parked`;
}
