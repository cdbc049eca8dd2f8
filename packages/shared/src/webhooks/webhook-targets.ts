/**
 * Per-job (and per-batch) webhook URLs, stored once and referred to by id.
 *
 * Such a URL often carries a token in its path or query. It is written to one Redis key of its
 * own; job data, batch records, the event stream and delivery jobs carry only a reference — the
 * id (`job-` + 16 hex of the URL's sha256, the same id the delivery log and dead letters use), the
 * host and the event filter — so nothing that reads those (the API, Bull Board, `zimage` views,
 * logs, event consumers) can show the URL. The dispatcher resolves the id at each delivery.
 */
import type { Redis } from 'ioredis';
import { z } from 'zod';
import { EVENT_TYPES, type WebhookSpec } from '../job-request.js';
import { urlHost } from '../http/url-host.js';
import { perJobEndpointId } from './delivery-job.js';

/**
 * How long a stored URL outlives its last use (an enqueue, an event for it): the delivery log's
 * 30 days, so that a replay of a dead letter still finds it, and a margin.
 */
export const WEBHOOK_TARGET_TTL_SECONDS = 35 * 24 * 3600;

export const webhookRefSchema = z.strictObject({
  endpointId: z.string().regex(/^job-[0-9a-f]{16}$/),
  /** For people: which receiver this is, without the path or query that may hold a token. */
  host: z.string(),
  events: z.array(z.enum(EVENT_TYPES)).min(1).optional(),
});

/** What job data, batch records and events hold instead of a webhook URL. */
export type WebhookRef = z.output<typeof webhookRefSchema>;

export function webhookTargetKey(prefix: string, endpointId: string): string {
  return `${prefix}:webhook-target:${endpointId}`;
}

/** The reference for a webhook. Pure: the URL itself is stored by `storeWebhookTargets`. */
export function webhookRefOf(spec: WebhookSpec): WebhookRef {
  return { endpointId: perJobEndpointId(spec.url), host: urlHost(spec.url) ?? '?', ...(spec.events ? { events: spec.events } : {}) };
}

/**
 * Stores each distinct URL (once however many jobs name it) and renews its lifetime. Called
 * before the jobs or batch that refer to it are written, so a reference never points at nothing.
 */
export async function storeWebhookTargets(redis: Redis, prefix: string, specs: Iterable<WebhookSpec>): Promise<void> {
  const urls = new Set<string>();
  for (const spec of specs) urls.add(spec.url);
  if (urls.size === 0) return;
  const multi = redis.multi();
  for (const url of urls) multi.set(webhookTargetKey(prefix, perJobEndpointId(url)), url, 'EX', WEBHOOK_TARGET_TTL_SECONDS);
  const results = await multi.exec();
  const failed = results?.find(([error]) => error);
  if (failed) throw failed[0];
}

/** The URL a reference stands for (its lifetime renewed), or undefined when it is no longer stored. */
export async function loadWebhookTarget(redis: Redis, prefix: string, endpointId: string): Promise<string | undefined> {
  const key = webhookTargetKey(prefix, endpointId);
  // GET + EXPIRE rather than GETEX, which needs Redis 6.2.
  const results = await redis.multi().get(key).expire(key, WEBHOOK_TARGET_TTL_SECONDS).exec();
  const [error, url] = results?.[0] ?? [null, null];
  if (error) throw error;
  return typeof url === 'string' ? url : undefined;
}

