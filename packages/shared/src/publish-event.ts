/**
 * Appends an event that is not a job's terminal event (those go through `publishJobEvent`, which
 * also updates batches and the manifest) to the event stream, at most once per event id: a
 * marker, set in the same script as the XADD, makes a repeat (a retried handler, two processes
 * reporting the same thing) a no-op.
 */
import type { Redis } from 'ioredis';
import { EVENT_STREAM_BACKSTOP_FACTOR, type PublishOptions } from './event-publisher.js';
import type { ZimageEvent } from './events.js';
import { emittedMarkerKey, eventsStreamKey } from './queue-names.js';
import type { WebhookRef } from './webhooks/webhook-targets.js';

const SCRIPT = `
if not redis.call('SET', KEYS[1], '1', 'NX', 'EX', tonumber(ARGV[1])) then return 0 end
local fields = { 'type', ARGV[3], 'id', ARGV[4], 'event', ARGV[5] }
if ARGV[6] ~= '' then
  table.insert(fields, 'webhook')
  table.insert(fields, ARGV[6])
end
redis.call('XADD', KEYS[2], 'MAXLEN', '~', tonumber(ARGV[2]) * ${EVENT_STREAM_BACKSTOP_FACTOR}, '*', unpack(fields))
return 1
`;

/** True when the event was appended; false when it had been already. */
export async function publishEvent(redis: Redis, event: ZimageEvent, publish: { webhook?: WebhookRef | undefined }, options: PublishOptions): Promise<boolean> {
  const keys = [emittedMarkerKey(options.prefix, event.id), eventsStreamKey(options.prefix)];
  const args = [String(options.markerTtlSeconds), String(options.maxLen), event.type, event.id, JSON.stringify(event), publish.webhook ? JSON.stringify(publish.webhook) : ''];
  return ((await redis.eval(SCRIPT, keys.length, ...keys, ...args)) as number) === 1;
}
