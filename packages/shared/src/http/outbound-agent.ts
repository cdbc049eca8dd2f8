/**
 * The one way this project makes an undici connection pool. Where the target is user-supplied
 * (webhook receivers, feeds) the pool is `guarded`: every connection's DNS answer is checked at
 * connect time, so a name that resolved to a public address when it was checked cannot be
 * rebound to 10.0.0.5 (or 169.254.169.254) when it is fetched. IP literals never reach the
 * lookup, so callers check the URL itself first with `checkWebhookUrl`.
 */
import { Agent } from 'undici';
import { guardedLookup, type WebhookUrlPolicy } from '../webhooks/ssrf-guard.js';

export interface OutboundAgentOptions {
  connectTimeoutMs: number;
  /** SSRF rules for a user-supplied target; absent for our own configured hosts (DashScope, OSS). */
  guard?: WebhookUrlPolicy | undefined;
  /** Time to the response headers, and between body chunks; per request when absent. */
  requestTimeoutMs?: number | undefined;
  keepAliveTimeoutMs?: number | undefined;
  connections?: number | undefined;
}

export function createOutboundAgent(options: OutboundAgentOptions): Agent {
  return new Agent({
    connect: {
      timeout: options.connectTimeoutMs,
      ...(options.guard ? { lookup: guardedLookup(options.guard) } : {}),
    },
    ...(options.requestTimeoutMs === undefined ? {} : { headersTimeout: options.requestTimeoutMs, bodyTimeout: options.requestTimeoutMs }),
    keepAliveTimeout: options.keepAliveTimeoutMs ?? 30_000,
    ...(options.connections === undefined ? {} : { connections: options.connections }),
  });
}
