/**
 * Webhook endpoints registered by the operator: each receives every event that matches its filter,
 * signed with its own secret. Configured like accounts, as JSON naming the variable that holds the
 * secret, so the list can live in version control and no secret is ever written to Redis:
 *
 *   ZIMAGE_WEBHOOK_ENDPOINTS='[{"id":"crm","url":"https://crm.example/hooks/zimage",
 *                               "events":["job.succeeded","batch.completed"],"secretEnv":"CRM_WEBHOOK_SECRET"}]'
 *
 * Only the endpoints' state (disabled after a 410) lives in Redis.
 */
import { z } from 'zod';
import { AppError } from '../errors.js';
import { EVENT_TYPES, type EventType } from '../job-request.js';
import { parseWebhookSecrets } from './webhook-secret.js';

export interface WebhookEndpoint {
  /** Stable name, in Redis keys, delivery logs and the CLI. `job-…` ids are per-job webhooks. */
  id: string;
  url: string;
  events: readonly EventType[];
  /** Decoded signing keys (several during a rotation). */
  keys: readonly Buffer[];
}

const endpointSchema = z.strictObject({
  id: z.string().regex(/^[a-z0-9][a-z0-9_-]{0,31}$/, { error: 'id must match [a-z0-9][a-z0-9_-]{0,31}' }).refine((id) => !id.startsWith('job-'), { error: 'id must not start with job- (reserved for per-job webhooks)' }),
  url: z.url({ protocol: /^https?$/, error: 'url must be an absolute http(s) URL' }).max(2048),
  events: z.array(z.enum(EVENT_TYPES, { error: `events must be among ${EVENT_TYPES.join(', ')}` })).min(1).optional(),
  secretEnv: z.string().regex(/^[A-Z_][A-Z0-9_]*$/, { error: 'secretEnv must be an environment variable name' }),
});

/** Parses ZIMAGE_WEBHOOK_ENDPOINTS; every problem at once, secrets never quoted. */
export function parseWebhookEndpoints(value: string | undefined, env: Readonly<Record<string, string | undefined>>): WebhookEndpoint[] {
  if (!value?.trim()) return [];
  const fail = (problems: string[]) => {
    throw new AppError('CONFIG_INVALID', `Invalid configuration:\n  - ${problems.join('\n  - ')}`, { details: { variables: ['ZIMAGE_WEBHOOK_ENDPOINTS'] } });
  };
  let json: unknown;
  try {
    json = JSON.parse(value);
  } catch {
    return fail(['ZIMAGE_WEBHOOK_ENDPOINTS: must be a JSON array of endpoints']);
  }
  const parsed = z.array(endpointSchema).safeParse(json);
  if (!parsed.success) return fail(parsed.error.issues.map((i) => `ZIMAGE_WEBHOOK_ENDPOINTS[${i.path.join('.')}]: ${i.message}`));
  const problems: string[] = [];
  const seen = new Set<string>();
  const endpoints = parsed.data.map((entry, index) => {
    if (seen.has(entry.id)) problems.push(`ZIMAGE_WEBHOOK_ENDPOINTS[${index}].id: "${entry.id}" is listed twice`);
    seen.add(entry.id);
    let keys: Buffer[] = [];
    const secret = env[entry.secretEnv];
    if (!secret?.trim()) problems.push(`${entry.secretEnv}: is required (the secret of webhook endpoint "${entry.id}")`);
    else {
      try {
        keys = parseWebhookSecrets(secret);
      } catch (error) {
        problems.push(`${entry.secretEnv}: ${(error as Error).message}`);
      }
    }
    return { id: entry.id, url: entry.url, events: entry.events ?? [...EVENT_TYPES], keys };
  });
  if (problems.length > 0) fail(problems);
  return endpoints;
}
