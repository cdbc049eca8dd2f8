/**
 * Standard Webhooks signing (spec v1, symmetric): `v1,` + base64 HMAC-SHA256 of
 * `${id}.${timestamp}.${body}` with each secret, space-separated.
 *
 * Written by hand (a dozen lines of node:crypto) rather than with the `standardwebhooks` package:
 * the tests verify our deliveries with that package, and an independent implementation on each
 * side is what makes those tests mean something.
 */
import { createHmac } from 'node:crypto';

export interface SignedHeaders {
  'webhook-id': string;
  'webhook-timestamp': string;
  'webhook-signature': string;
}

export function signWebhook(id: string, timestampSeconds: number, body: string, keys: readonly Buffer[]): SignedHeaders {
  if (id.includes('.')) throw new TypeError('a webhook id must not contain "."');
  const timestamp = String(Math.floor(timestampSeconds));
  const content = `${id}.${timestamp}.${body}`;
  const signatures = keys.map((key) => `v1,${createHmac('sha256', key).update(content, 'utf8').digest('base64')}`);
  return { 'webhook-id': id, 'webhook-timestamp': timestamp, 'webhook-signature': signatures.join(' ') };
}
