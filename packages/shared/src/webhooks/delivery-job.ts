/**
 * A webhook delivery: one BullMQ job in the `webhooks` queue per (event, endpoint). Its id is
 * derived from both, so the fan-out can run again after a crash without delivering twice.
 */
import { createHash } from 'node:crypto';
import type { ZimageEvent } from '../events.js';

export interface DeliveryJobData {
  eventId: string;
  eventType: ZimageEvent['type'];
  /** When the event happened (ISO); replays "since a time" select on it. */
  eventTimestamp: string;
  endpointId: string;
  /**
   * Only in deliveries fanned out before per-job URLs were stored by reference. A per-job (`job-…`)
   * endpoint's URL is read from its stored target (webhook-targets.ts) and a registered endpoint's
   * from the configuration, at each attempt, so a corrected URL applies to the retries.
   */
  url?: string;
  event: ZimageEvent;
}

/** Endpoint id of a per-job webhook URL: `job-` + 16 hex chars of its sha256. */
export function perJobEndpointId(url: string): string {
  return `job-${createHash('sha256').update(url).digest('hex').slice(0, 16)}`;
}

/** BullMQ job id (BullMQ ids may not contain ':'). */
export function deliveryJobId(eventId: string, endpointId: string): string {
  return `${eventId}.${endpointId}`;
}
