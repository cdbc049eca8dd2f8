import { eventIdFor, perJobEndpointId, webhookRefOf, type WebhookEndpoint, type ZimageEvent } from '@zimage/shared';
import { describe, expect, it } from 'vitest';
import { deliveryTargets } from './delivery-targets.js';

const batchCompleted: ZimageEvent = {
  id: eventIdFor('batch.completed', 'b1'),
  version: 1,
  type: 'batch.completed',
  timestamp: '2026-11-23T10:00:00.000Z',
  data: { batchId: 'b1', total: 1, succeeded: 1, failed: 0, expired: 0, cancelled: 0 },
};
const expired: ZimageEvent = {
  id: eventIdFor('job.expired', 'j1'),
  version: 1,
  type: 'job.expired',
  timestamp: '2026-11-23T10:00:00.000Z',
  data: { jobId: 'j1', metadata: {}, deadline: '2026-11-23T09:00:00.000Z' },
};
const endpoint = (id: string, events: WebhookEndpoint['events']): WebhookEndpoint => ({ id, url: `https://${id}.example/`, events, keys: [] });

describe('deliveryTargets', () => {
  it("selects registered endpoints by their filter and adds the entry's own webhook (a URL, as entries published before references carry it)", () => {
    const endpoints = [endpoint('all', ['job.succeeded', 'job.failed', 'job.expired', 'batch.completed']), endpoint('batches', ['batch.completed'])];
    const own = JSON.stringify({ url: 'https://client.example/cb?t=1' });
    expect(deliveryTargets(expired, { webhook: own }, endpoints)).toEqual({
      targets: [{ endpointId: 'all' }, { endpointId: perJobEndpointId('https://client.example/cb?t=1'), url: 'https://client.example/cb?t=1' }],
      unreadableWebhook: false,
    });
    expect(deliveryTargets(batchCompleted, {}, endpoints).targets.map((t) => t.endpointId)).toEqual(['all', 'batches']);
  });

  it("takes the entry's own webhook by reference: its endpoint id, never a URL", () => {
    const ref = webhookRefOf({ url: 'https://client.example/cb?token=s3cr3t', events: ['job.expired'] });
    expect(ref).toEqual({ endpointId: perJobEndpointId('https://client.example/cb?token=s3cr3t'), host: 'client.example', events: ['job.expired'] });
    expect(deliveryTargets(expired, { webhook: JSON.stringify(ref) }, [])).toEqual({ targets: [{ endpointId: ref.endpointId }], unreadableWebhook: false });
    expect(deliveryTargets(batchCompleted, { webhook: JSON.stringify(ref) }, []).targets).toEqual([]);
  });

  it("honours the own webhook's event filter", () => {
    const own = JSON.stringify({ url: 'https://client.example/cb', events: ['job.succeeded'] });
    expect(deliveryTargets(expired, { webhook: own }, []).targets).toEqual([]);
  });

  it('reports an unreadable webhook field instead of throwing', () => {
    expect(deliveryTargets(expired, { webhook: '{not json' }, [])).toEqual({ targets: [], unreadableWebhook: true });
    expect(deliveryTargets(expired, { webhook: JSON.stringify({ url: 'ftp://x' }) }, [])).toEqual({ targets: [], unreadableWebhook: true });
  });

  it('gives the same URL the same endpoint id (deliveries deduplicate per event and URL)', () => {
    expect(perJobEndpointId('https://a.example/x')).toBe(perJobEndpointId('https://a.example/x'));
    expect(perJobEndpointId('https://a.example/x')).not.toBe(perJobEndpointId('https://a.example/y'));
    expect(perJobEndpointId('https://a.example/x')).toMatch(/^job-[0-9a-f]{16}$/);
  });
});
