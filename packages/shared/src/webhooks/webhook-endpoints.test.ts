import { describe, expect, it } from 'vitest';
import { generateWebhookSecret } from './webhook-secret.js';
import { parseWebhookEndpoints } from './webhook-endpoints.js';

const secret = generateWebhookSecret();

describe('parseWebhookEndpoints', () => {
  it('resolves each endpoint with its secret from the named variable; events default to all', () => {
    const endpoints = parseWebhookEndpoints(
      JSON.stringify([
        { id: 'crm', url: 'https://crm.example/hooks', events: ['batch.completed'], secretEnv: 'CRM_SECRET' },
        { id: 'audit', url: 'https://audit.example/in', secretEnv: 'AUDIT_SECRET' },
      ]),
      { CRM_SECRET: secret, AUDIT_SECRET: `${secret} ${generateWebhookSecret()}` },
    );
    expect(endpoints.map((e) => [e.id, e.events.length, e.keys.length])).toEqual([
      ['crm', 1, 1],
      ['audit', 9, 2], // every event type: the batch lifecycle, schedule.failed and the budget events included
    ]);
  });

  it('is empty when unset', () => {
    expect(parseWebhookEndpoints(undefined, {})).toEqual([]);
    expect(parseWebhookEndpoints('  ', {})).toEqual([]);
  });

  it('lists every problem at once, naming the entry and field, never a secret value', () => {
    const run = () =>
      parseWebhookEndpoints(
        JSON.stringify([
          { id: 'Bad Id', url: 'ftp://x', secretEnv: 'X' },
          { id: 'ok', url: 'https://ok.example', secretEnv: 'MISSING_SECRET', events: ['job.done'] },
        ]),
        {},
      );
    expect(run).toThrow(/\[0\.id\]: id must match/);
    expect(run).toThrow(/\[0\.url\]: url must be an absolute http\(s\) URL/);
    expect(run).toThrow(/\[1\.events\.0\]: events must be among/);
  });

  it('reports a missing or malformed secret and duplicate ids', () => {
    const run = () =>
      parseWebhookEndpoints(
        JSON.stringify([
          { id: 'a', url: 'https://a.example', secretEnv: 'A_SECRET' },
          { id: 'a', url: 'https://b.example', secretEnv: 'B_SECRET' },
        ]),
        { B_SECRET: 'not-a-secret-value' },
      );
    expect(run).toThrow('A_SECRET: is required (the secret of webhook endpoint "a")');
    expect(run).toThrow('B_SECRET: the secret must start with whsec_');
    expect(run).toThrow('"a" is listed twice');
    expect(run).not.toThrow('not-a-secret-value');
  });

  it('reserves job- ids for per-job webhooks and rejects non-JSON', () => {
    expect(() => parseWebhookEndpoints(JSON.stringify([{ id: 'job-1', url: 'https://a.example', secretEnv: 'S' }]), { S: secret })).toThrow('reserved');
    expect(() => parseWebhookEndpoints('[{', {})).toThrow('must be a JSON array');
  });
});
