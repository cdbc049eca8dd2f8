/**
 * Who receives an event: every registered endpoint whose filter lists its type, plus the job's (or
 * batch's) own webhook, whose reference the event script copied onto the stream entry. Pure.
 */
import { perJobEndpointId, webhookRefSchema, webhookSchema, type WebhookEndpoint, type ZimageEvent } from '@zimage/shared';
import { z } from 'zod';

export interface DeliveryTarget {
  endpointId: string;
  /**
   * Set only for a per-job webhook published with its URL (before URLs were stored by reference);
   * otherwise a per-job URL is looked up by endpoint id at delivery, a registered one in configuration.
   */
  url?: string;
}

const ownWebhookSchema = z.union([webhookRefSchema, webhookSchema]);

export function deliveryTargets(
  event: ZimageEvent,
  fields: Readonly<Record<string, string>>,
  endpoints: readonly WebhookEndpoint[],
): { targets: DeliveryTarget[]; unreadableWebhook: boolean } {
  const targets: DeliveryTarget[] = endpoints.filter((e) => e.events.includes(event.type)).map((e) => ({ endpointId: e.id }));
  const own = parseWebhookField(fields['webhook']);
  // Without a filter, a job's webhook gets every event about it (its terminal event; for a batch's
  // webhook, batch.completed): there is nothing else on its entries.
  if (own.spec && (own.spec.events === undefined || own.spec.events.includes(event.type))) {
    targets.push('url' in own.spec ? { endpointId: perJobEndpointId(own.spec.url), url: own.spec.url } : { endpointId: own.spec.endpointId });
  }
  return { targets, unreadableWebhook: own.unreadable };
}

function parseWebhookField(raw: string | undefined): { spec?: z.output<typeof ownWebhookSchema>; unreadable: boolean } {
  if (!raw) return { unreadable: false };
  try {
    const parsed = ownWebhookSchema.safeParse(JSON.parse(raw));
    return parsed.success ? { spec: parsed.data, unreadable: false } : { unreadable: true };
  } catch {
    return { unreadable: true };
  }
}
