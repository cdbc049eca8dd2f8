/**
 * Who receives an event: every registered endpoint whose filter lists its type, plus the job's (or
 * batch's) own webhook, which the event script copied onto the stream entry. Pure.
 */
import { perJobEndpointId, webhookSchema, type WebhookEndpoint, type WebhookSpec, type ZimageEvent } from '@zimage/shared';

export interface DeliveryTarget {
  endpointId: string;
  /** Set for per-job webhooks; registered endpoints are resolved from configuration. */
  url?: string;
}

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
    targets.push({ endpointId: perJobEndpointId(own.spec.url), url: own.spec.url });
  }
  return { targets, unreadableWebhook: own.unreadable };
}

function parseWebhookField(raw: string | undefined): { spec?: WebhookSpec; unreadable: boolean } {
  if (!raw) return { unreadable: false };
  try {
    const parsed = webhookSchema.safeParse(JSON.parse(raw));
    return parsed.success ? { spec: parsed.data, unreadable: false } : { unreadable: true };
  } catch {
    return { unreadable: true };
  }
}
