/**
 * Webhook signing secrets in the Standard Webhooks form: `whsec_` + base64 of 24–64 random bytes.
 *
 * A variable may hold several secrets separated by spaces or commas: every delivery is signed with
 * each of them (several `v1,` signatures in one header), so a secret can be rotated without a
 * window where receivers reject deliveries: add the new one, update the receivers, drop the old.
 */
import { randomBytes } from 'node:crypto';

const PREFIX = 'whsec_';
const MIN_BYTES = 24;
const MAX_BYTES = 64;

/** The decoded keys of one secret variable; throws TypeError describing the rule (never the value). */
export function parseWebhookSecrets(value: string): Buffer[] {
  const parts = value.split(/[\s,]+/).filter(Boolean);
  if (parts.length === 0) throw new TypeError('must hold at least one whsec_… secret');
  return parts.map((part, index) => {
    const which = parts.length > 1 ? `secret ${index + 1}` : 'the secret';
    if (!part.startsWith(PREFIX)) throw new TypeError(`${which} must start with ${PREFIX}`);
    const encoded = part.slice(PREFIX.length);
    if (!/^[A-Za-z0-9+/]+={0,2}$/.test(encoded) || encoded.length % 4 !== 0) {
      throw new TypeError(`${which} must be ${PREFIX} followed by base64`);
    }
    const key = Buffer.from(encoded, 'base64');
    if (key.length < MIN_BYTES || key.length > MAX_BYTES) {
      throw new TypeError(`${which} must encode ${MIN_BYTES}–${MAX_BYTES} random bytes (got ${key.length})`);
    }
    return key;
  });
}

/** A fresh secret, for `zimage webhooks secret` and tests. */
export function generateWebhookSecret(bytes = 32): string {
  return `${PREFIX}${randomBytes(bytes).toString('base64')}`;
}
