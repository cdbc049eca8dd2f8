import { Webhook } from 'standardwebhooks';
import { describe, expect, it } from 'vitest';
import { generateWebhookSecret, parseWebhookSecrets } from './webhook-secret.js';
import { signWebhook } from './webhook-signature.js';

describe('parseWebhookSecrets', () => {
  it('decodes one or several whsec_ secrets (space or comma separated)', () => {
    const a = generateWebhookSecret();
    const b = generateWebhookSecret(24);
    expect(parseWebhookSecrets(a)).toHaveLength(1);
    expect(parseWebhookSecrets(`${a} ${b}`).map((k) => k.length)).toEqual([32, 24]);
    expect(parseWebhookSecrets(`${a},${b}`)).toHaveLength(2);
  });

  it.each([
    ['', 'at least one'],
    ['secret', 'must start with whsec_'],
    ['whsec_not base64!', 'followed by base64'],
    [`whsec_${Buffer.alloc(8).toString('base64')}`, '24–64 random bytes (got 8)'],
    [`whsec_${Buffer.alloc(65).toString('base64')}`, '(got 65)'],
  ])('rejects %j naming the rule', (value, rule) => {
    expect(() => parseWebhookSecrets(value)).toThrow(rule);
  });

  it('never quotes the value in its errors', () => {
    expect(() => parseWebhookSecrets('whsec_c2VjcmV0LXZhbHVl')).toThrow(/^(?!.*c2VjcmV0).*$/);
  });
});

describe('signWebhook', () => {
  const body = JSON.stringify({ type: 'job.succeeded', timestamp: '2026-11-23T10:00:00.000Z', data: { jobId: 'j1', prompt: '一只猫' } });

  it('produces headers the standardwebhooks package verifies (an independent implementation)', () => {
    const secret = generateWebhookSecret();
    const now = Math.floor(Date.now() / 1000);
    const headers = signWebhook('evt_abc', now, body, parseWebhookSecrets(secret));
    expect(headers['webhook-id']).toBe('evt_abc');
    expect(headers['webhook-timestamp']).toBe(String(now));
    expect(new Webhook(secret).verify(body, { ...headers })).toEqual(JSON.parse(body));
    // And the same bytes as the package's own signer.
    expect(headers['webhook-signature']).toBe(new Webhook(secret).sign('evt_abc', new Date(now * 1000), body));
  });

  it('signs with every secret during a rotation, so receivers with either verify', () => {
    const oldSecret = generateWebhookSecret();
    const newSecret = generateWebhookSecret();
    const now = Math.floor(Date.now() / 1000);
    const headers = signWebhook('evt_rot', now, body, parseWebhookSecrets(`${newSecret} ${oldSecret}`));
    expect(headers['webhook-signature'].split(' ')).toHaveLength(2);
    expect(() => new Webhook(oldSecret).verify(body, { ...headers })).not.toThrow();
    expect(() => new Webhook(newSecret).verify(body, { ...headers })).not.toThrow();
    expect(() => new Webhook(generateWebhookSecret()).verify(body, { ...headers })).toThrow();
  });

  it('refuses ids with a dot (the signed content is dot-separated)', () => {
    expect(() => signWebhook('evt.1', 1, body, parseWebhookSecrets(generateWebhookSecret()))).toThrow('"."');
  });
});
