/**
 * One webhook delivery attempt: sign, POST, judge the answer, record it.
 *
 * The rules (Standard Webhooks): only 2xx is success; redirects are not followed (a 3xx is a
 * failure like any other); 410 Gone disables the endpoint; 429 and 503 honour Retry-After; every
 * attempt times out. Every attempt, whatever its outcome, is appended to the event's delivery log.
 * Retries are BullMQ's (attempts + the schedule's backoff strategy): this function makes exactly
 * one request.
 */
import {
  AppError,
  checkWebhookUrl,
  classifyNetworkError,
  glimpseBody,
  loadWebhookTarget,
  parseRetryAfter,
  disableEndpoint,
  endpointState,
  recordAttempt,
  signWebhook,
  WEBHOOK_TARGET_TTL_SECONDS,
  type DeliveryAttempt,
  type DeliveryJobData,
  type Logger,
  type Storage,
  type WebhookEndpoint,
  type WebhookUrlPolicy,
  urlHost,
} from '@zimage/shared';
import type { Job } from 'bullmq';
import type { Redis } from 'ioredis';
import { request, type Dispatcher } from 'undici';
import { failureMessage, toRetryable, toUnrecoverable } from '../to-bullmq-error.js';
import { buildWebhookBody } from './webhook-body.js';

const USER_AGENT = 'zimage-webhooks/1';
/** Of a failed answer's body, this much is kept in the log (what the receiver said is useful). */
const SNIPPET_BYTES = 200;

export interface DeliveryContext {
  redis: Redis;
  prefix: string;
  logger: Logger;
  dispatcher: Dispatcher;
  policy: WebhookUrlPolicy;
  /** Registered endpoints by id. */
  endpoints: ReadonlyMap<string, WebhookEndpoint>;
  /** ZIMAGE_WEBHOOK_SECRET, for per-job webhooks. */
  jobSecretKeys: readonly Buffer[] | undefined;
  storage: Pick<Storage, 'presignedUrl'> | undefined;
  timeoutMs: number;
  /** The delay before the next attempt (jittered schedule, or Retry-After); undefined when none is left. */
  nextDelayMs: (attemptsMade: number, retryAfterMs?: number) => number | undefined;
}

export interface DeliveryResult {
  status: number;
  attempt: number;
  latencyMs: number;
}

export async function deliverWebhook(job: Job<DeliveryJobData>, ctx: DeliveryContext): Promise<DeliveryResult> {
  const data = job.data;
  const attempt = job.attemptsMade + 1;
  // The job's own attempts, fixed when it was queued: a worker with a different schedule agrees.
  const maxAttempts = job.opts.attempts ?? 1;
  const perJob = data.url !== undefined || data.endpointId.startsWith('job-');
  const registered = perJob ? undefined : ctx.endpoints.get(data.endpointId);
  const url = data.url ?? (perJob ? await loadWebhookTarget(ctx.redis, ctx.prefix, data.endpointId) : registered?.url);
  const host = (url ? urlHost(url) : undefined) ?? '?';
  const log = (entry: Omit<DeliveryAttempt, 'endpointId' | 'host' | 'attempt' | 'at'>) =>
    recordAttempt(ctx.redis, ctx.prefix, data.eventId, { endpointId: data.endpointId, host, attempt, at: new Date().toISOString(), ...entry });

  const giveUp = async (error: AppError, outcome: DeliveryAttempt['outcome']): Promise<never> => {
    await log({ outcome, error: failureMessage(error) });
    ctx.logger.warn({ eventId: data.eventId, endpointId: data.endpointId, code: error.code }, `Webhook ${data.eventId} → ${data.endpointId} dead-lettered: ${error.message}`);
    throw toUnrecoverable(error);
  };

  // A worker whose configuration lacks the endpoint or the secret (a rolling deploy, one
  // misconfigured host) retries on the schedule: another worker may be able to deliver it.
  if (!url && perJob) {
    return giveUp(new AppError('WEBHOOK_DELIVERY_FAILED', `the URL of per-job webhook ${data.endpointId} is no longer stored (kept ${WEBHOOK_TARGET_TTL_SECONDS / 86_400} days after its last use)`), 'failed');
  }
  if (!url) return retryLater(new AppError('WEBHOOK_SECRET_MISSING', `endpoint ${data.endpointId} is not in this worker's ZIMAGE_WEBHOOK_ENDPOINTS`), {});
  const keys = registered ? registered.keys : ctx.jobSecretKeys;
  if (!keys || keys.length === 0) return retryLater(new AppError('WEBHOOK_SECRET_MISSING', 'ZIMAGE_WEBHOOK_SECRET is not set on this worker; per-job webhooks cannot be signed'), {});
  const state = await endpointState(ctx.redis, ctx.prefix, data.endpointId);
  if (state) return giveUp(new AppError('WEBHOOK_ENDPOINT_DISABLED', `endpoint ${data.endpointId} (${host}) was disabled at ${state.disabledAt}: ${state.reason}`), 'endpoint-disabled');
  try {
    // IP literals never reach the connector's DNS lookup, so they are checked here too.
    await checkWebhookUrl(url, ctx.policy);
  } catch (error) {
    if (!(error instanceof AppError)) throw error;
    // A name that does not resolve right now is a DNS outage until proven otherwise: retry it.
    const reason = String(error.details['reason'] ?? '');
    if (reason.startsWith('does not resolve')) return retryLater(new AppError('WEBHOOK_DELIVERY_FAILED', `${host}: ${reason}`), {});
    return giveUp(error, 'refused');
  }

  let body: string;
  try {
    body = await buildWebhookBody(data.event, ctx.storage);
  } catch (error) {
    if (error instanceof RangeError) return giveUp(new AppError('INTERNAL', error.message), 'failed');
    return retryLater(new AppError('STORAGE_UNAVAILABLE', `could not make the download link: ${(error as Error).message}`), {});
  }
  const headers = {
    ...signWebhook(data.eventId, Date.now() / 1000, body, keys),
    'content-type': 'application/json',
    'user-agent': USER_AGENT,
  };
  const started = performance.now();
  let status: number;
  let snippet = '';
  let retryAfterMs: number | undefined;
  try {
    const response = await request(url, {
      method: 'POST',
      body,
      headers,
      dispatcher: ctx.dispatcher,
      signal: AbortSignal.timeout(ctx.timeoutMs),
      headersTimeout: ctx.timeoutMs,
      bodyTimeout: ctx.timeoutMs,
    });
    status = response.statusCode;
    // A receiver's answer is never needed whole: a 2xx body is dropped, a failure's first bytes logged.
    const glimpse = await glimpseBody(response.body, SNIPPET_BYTES);
    if (status < 200 || status >= 300) snippet = printable(glimpse);
    retryAfterMs = status === 429 || status === 503 ? parseRetryAfter(response.headers) : undefined;
  } catch (error) {
    const latencyMs = Math.round(performance.now() - started);
    const network = classifyNetworkError(error, host);
    if (network.code === 'WEBHOOK_URL_REFUSED') return giveUp(network, 'refused');
    const reason = network.code === 'NETWORK_TIMEOUT' ? `${host}: no answer within ${ctx.timeoutMs} ms` : network.message;
    return retryLater(new AppError('WEBHOOK_DELIVERY_FAILED', reason), { latencyMs });
  }
  const latencyMs = Math.round(performance.now() - started);

  if (status >= 200 && status < 300) {
    await log({ outcome: 'delivered', status, latencyMs });
    return { status, attempt, latencyMs };
  }
  if (status === 410) {
    await disableEndpoint(ctx.redis, ctx.prefix, data.endpointId, `answered 410 Gone to ${data.eventId}`, host);
    ctx.logger.warn({ endpointId: data.endpointId, host }, `Webhook endpoint ${data.endpointId} (${host}) answered 410 Gone: disabled`);
    await log({ outcome: 'endpoint-disabled', status, latencyMs, error: 'answered 410 Gone: endpoint disabled' });
    throw toUnrecoverable(new AppError('WEBHOOK_ENDPOINT_DISABLED', `${host} answered 410 Gone; endpoint ${data.endpointId} disabled`));
  }
  const what = status >= 300 && status < 400 ? `answered ${status} (redirects are not followed)` : `answered ${status}`;
  return retryLater(new AppError('WEBHOOK_DELIVERY_FAILED', `${host} ${what}${snippet ? `: ${snippet}` : ''}`, { retryAfterMs }), { status, latencyMs });

  async function retryLater(error: AppError, facts: { status?: number; latencyMs?: number }): Promise<never> {
    const delay = attempt < maxAttempts ? ctx.nextDelayMs(attempt, error.retryAfterMs) : undefined;
    const last = delay === undefined;
    await log({
      outcome: last ? 'dead-lettered' : 'failed',
      ...facts,
      error: error.message,
      ...(last ? {} : { nextAttemptAt: new Date(Date.now() + delay).toISOString() }),
    });
    if (last) ctx.logger.warn({ eventId: data.eventId, endpointId: data.endpointId }, `Webhook ${data.eventId} → ${data.endpointId} dead-lettered after ${attempt} attempts: ${error.message}`);
    const retryable = toRetryable(error) as Error & { retryDelayMs?: number };
    // The backoff strategy uses this delay, so the log's nextAttemptAt is when BullMQ retries.
    retryable.retryDelayMs = delay ?? -1;
    throw retryable;
  }
}


/** Control characters would garble a terminal listing; the text is informative only. */
function printable(bytes: Buffer): string {
  return bytes.toString('utf8').replace(/[\u0000-\u001f\u007f]+/g, ' ').trim();
}
