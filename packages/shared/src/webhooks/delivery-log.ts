/**
 * What happened to webhook deliveries, kept in Redis for the operator: every attempt of an event
 * (`zimage webhooks log EVENT_ID`) and each endpoint's state (disabled after a 410).
 *
 * Nothing here holds a secret or a full URL (a per-job URL's query may carry a token): endpoints
 * are named by id and host.
 */
import type { Redis } from 'ioredis';
import { webhookAttemptsKey, webhookEndpointKey } from '../queue-names.js';

/** Attempts of one event kept (all endpoints together), and for how long. */
const MAX_ATTEMPTS_KEPT = 200;
export const DELIVERY_LOG_TTL_SECONDS = 30 * 24 * 3600;

export type AttemptOutcome = 'delivered' | 'failed' | 'endpoint-disabled' | 'refused' | 'dead-lettered';

export interface DeliveryAttempt {
  endpointId: string;
  /** Host (and port) called; never the path or query. */
  host: string;
  /** 1-based attempt of this delivery (restarts at 1 after a replay). */
  attempt: number;
  at: string;
  outcome: AttemptOutcome;
  /** HTTP status, when the receiver answered. */
  status?: number;
  latencyMs?: number;
  error?: string;
  /** When the next attempt is due, if there is one. */
  nextAttemptAt?: string;
}

export async function recordAttempt(redis: Redis, prefix: string, eventId: string, attempt: DeliveryAttempt): Promise<void> {
  const key = webhookAttemptsKey(prefix, eventId);
  await redis.multi().rpush(key, JSON.stringify(attempt)).ltrim(key, -MAX_ATTEMPTS_KEPT, -1).expire(key, DELIVERY_LOG_TTL_SECONDS).exec();
}

export async function listAttempts(redis: Redis, prefix: string, eventId: string): Promise<DeliveryAttempt[]> {
  const raw = await redis.lrange(webhookAttemptsKey(prefix, eventId), 0, -1);
  return raw.map((entry) => JSON.parse(entry) as DeliveryAttempt);
}

export interface EndpointState {
  disabledAt: string;
  reason: string;
}

export async function endpointState(redis: Redis, prefix: string, endpointId: string): Promise<EndpointState | undefined> {
  const hash = await redis.hgetall(webhookEndpointKey(prefix, endpointId));
  return hash['disabledAt'] ? { disabledAt: hash['disabledAt'], reason: hash['reason'] ?? '' } : undefined;
}

export async function disableEndpoint(redis: Redis, prefix: string, endpointId: string, reason: string, host: string): Promise<void> {
  await redis.hset(webhookEndpointKey(prefix, endpointId), { disabledAt: new Date().toISOString(), reason, host });
}

/** Returns false when the endpoint was not disabled. */
export async function enableEndpoint(redis: Redis, prefix: string, endpointId: string): Promise<boolean> {
  return (await redis.del(webhookEndpointKey(prefix, endpointId))) > 0;
}
