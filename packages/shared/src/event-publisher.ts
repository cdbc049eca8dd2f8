/**
 * Publishes completion events to the Redis stream, exactly once per event id.
 *
 * Written as one Lua script (BullMQ has no primitive for this) because three things must happen
 * atomically, even when two workers finish the last jobs of a batch at the same moment or a
 * worker retries after a crash between steps:
 *   1. a marker `emitted:{jobId}` records which incarnation of the job published — if this one
 *      did already, nothing else happens: a job has one terminal event, so a job that somehow
 *      runs again after `job.failed` cannot also publish `job.succeeded` and count twice in its
 *      batch; a later incarnation of the same id (re-submitted after a cancel) publishes anew;
 *   2. the event is appended to the bounded stream (with the job's or batch's webhook, when it has
 *      one, as a separate field for the webhook dispatcher);
 *   3. fleet-wide totals for metrics (terminal jobs by outcome, images stored, estimated spend,
 *      render-cache copies and what they saved);
 *   4. for batch jobs, the batch's outcome counter, failures by code and results manifest entry are
 *      updated; its first failure appends `batch.first_failure`, once; and when the last job
 *      becomes terminal `batch.completed` is appended, once (guarded by HSETNX), with
 *      `batch.exhausted` beside it when some jobs failed or expired.
 */
import type { Redis } from 'ioredis';
import { eventIdFor, EVENT_SCHEMA_VERSION, type JobEvent } from './events.js';
import type { WebhookSpec } from './job-request.js';
import { storeWebhookTargets, WEBHOOK_TARGET_TTL_SECONDS, webhookRefOf, webhookTargetKey, type WebhookRef } from './webhooks/webhook-targets.js';
import { batchKey, batchResultsKey, emittedMarkerKey, eventsStreamKey, metricsTotalsKey } from './queue-names.js';

export type JobOutcome = 'succeeded' | 'failed' | 'expired' | 'cancelled';

export interface PublishOptions {
  prefix: string;
  /**
   * The stream's normal length (`ZIMAGE_EVENTS_MAXLEN`). The event-stream trimmer (worker process)
   * trims back to it, but never past an entry some consumer group has not read yet, up to the hard
   * cap of `EVENT_STREAM_HARD_CAP_FACTOR` × maxLen. XADD itself only trims at
   * `EVENT_STREAM_BACKSTOP_FACTOR` × maxLen: were it to trim at maxLen (as it once did), a lagging
   * group would silently lose the entries it had not read.
   */
  maxLen: number;
  /** How long "already emitted" markers are kept, in seconds. */
  markerTtlSeconds: number;
}

export const DEFAULT_PUBLISH_OPTIONS: Omit<PublishOptions, 'prefix'> = {
  maxLen: 100_000,
  markerTtlSeconds: 14 * 24 * 3600,
};

/**
 * The hard cap on the stream, as a multiple of maxLen: how far unread entries of a lagging (or
 * abandoned) consumer group may hold the stream above maxLen before the trimmer cuts them, and
 * logs what each group lost. A multiple rather than its own setting because XADD only receives
 * maxLen, and both caps must follow it.
 */
export const EVENT_STREAM_HARD_CAP_FACTOR = 10;

/**
 * XADD's own cap: the hard cap plus one maxLen of headroom, so that while the trimmer runs (every
 * few seconds) it, and not XADD, is what cuts at the hard cap, counting the unread entries each
 * group loses. XADD's cut is the backstop for when no trimmer runs (no worker process), and is
 * silent.
 */
export const EVENT_STREAM_BACKSTOP_FACTOR = EVENT_STREAM_HARD_CAP_FACTOR + 1;

export interface PublishOutcome {
  /** False when the event had been published before (a retry or a duplicate). */
  published: boolean;
  /** True when this publication completed the job's batch and emitted `batch.completed`. */
  batchCompleted: boolean;
}

/**
 * Lua shared by both scripts: when every job of the batch is terminal, publish batch.completed,
 * once (HSETNX completedAt), with batch.exhausted before it when jobs failed or expired. Returns
 * true when it published.
 */
const COMPLETE_BATCH_LUA = `
-- A batch's own event, with the batch's webhook (if it has one) for the dispatcher.
local function add_batch_event(batch, stream, maxlen, event_type, event_id, event)
  local fields = { 'type', event_type, 'id', event_id, 'event', event }
  local webhook = redis.call('HGET', batch, 'webhook')
  if webhook then
    table.insert(fields, 'webhook')
    table.insert(fields, webhook)
  end
  redis.call('XADD', stream, 'MAXLEN', '~', tonumber(maxlen) * ${EVENT_STREAM_BACKSTOP_FACTOR}, '*', unpack(fields))
end

-- When every job of the batch is terminal: batch.completed, once (HSETNX completedAt), just after
-- batch.exhausted when some of them failed or expired (with the failures by code), so that
-- batch.completed stays the last event of a batch, where feeds and waits stop.
local function complete_batch(batch, stream, maxlen, event_id, timestamp, batch_id, exhausted_id)
  local h = redis.call('HMGET', batch, 'total', 'succeeded', 'failed', 'expired', 'cancelled', 'round')
  local total = tonumber(h[1])
  local s, f, e, c = tonumber(h[2]) or 0, tonumber(h[3]) or 0, tonumber(h[4]) or 0, tonumber(h[5]) or 0
  if total == nil or s + f + e + c < total then return false end
  if redis.call('HSETNX', batch, 'completedAt', timestamp) == 0 then return false end
  -- A batch completing again after a bulk retry (round n > 0) announces it under new ids, so that
  -- consumers de-duplicating by event id do not drop it as the first completion's repeat. Same
  -- shape as eventIdFor's (evt_ + 24 hex); sha1 because that is the hash Redis scripts have.
  local round = tonumber(h[6]) or 0
  if round > 0 then
    event_id = 'evt_' .. string.sub(redis.sha1hex('batch.completed:' .. batch_id .. '#' .. round), 1, 24)
    exhausted_id = 'evt_' .. string.sub(redis.sha1hex('batch.exhausted:' .. batch_id .. '#' .. round), 1, 24)
  end
  local counts = { batchId = batch_id, total = total, succeeded = s, failed = f, expired = e, cancelled = c }
  if f + e > 0 then
    local by_code = {}
    local flat = redis.call('HGETALL', batch)
    for i = 1, #flat, 2 do
      if string.sub(flat[i], 1, 11) == 'failedCode:' then by_code[string.sub(flat[i], 12)] = tonumber(flat[i + 1]) end
    end
    local exhausted = { failedByCode = by_code }
    for k, v in pairs(counts) do exhausted[k] = v end
    add_batch_event(batch, stream, maxlen, 'batch.exhausted', exhausted_id, cjson.encode({
      id = exhausted_id, version = ${EVENT_SCHEMA_VERSION}, type = 'batch.exhausted', timestamp = timestamp, data = exhausted
    }))
  end
  add_batch_event(batch, stream, maxlen, 'batch.completed', event_id, cjson.encode({
    id = event_id, version = ${EVENT_SCHEMA_VERSION}, type = 'batch.completed', timestamp = timestamp, data = counts
  }))
  return true
end
`;

const SCRIPT = `${COMPLETE_BATCH_LUA}
-- The marker holds the incarnation (the job's creation time) that published: the same
-- incarnation again is a duplicate; another one is the same job id re-used after cancel or
-- retention, which publishes under its own event id. '1' is an older version's marker: a duplicate.
local previous = redis.call('GET', KEYS[1])
if previous == ARGV[14] or previous == '1' then return 0 end
local event_json, event_id = ARGV[1], ARGV[5]
if previous then event_json, event_id = ARGV[15], ARGV[16] end
redis.call('SET', KEYS[1], ARGV[14], 'EX', ARGV[3])
if ARGV[12] ~= '' then
  redis.call('XADD', KEYS[2], 'MAXLEN', '~', tonumber(ARGV[2]) * ${EVENT_STREAM_BACKSTOP_FACTOR}, '*', 'type', ARGV[4], 'id', event_id, 'event', event_json, 'webhook', ARGV[12])
else
  redis.call('XADD', KEYS[2], 'MAXLEN', '~', tonumber(ARGV[2]) * ${EVENT_STREAM_BACKSTOP_FACTOR}, '*', 'type', ARGV[4], 'id', event_id, 'event', event_json)
end
redis.call('HINCRBY', KEYS[3], 'jobs:' .. ARGV[6], 1)
if tonumber(ARGV[13]) > 0 then
  redis.call('HINCRBY', KEYS[3], 'imagesStored', 1)
  redis.call('HINCRBY', KEYS[3], 'costMicroUsd', ARGV[13])
end
if ARGV[19] == '1' then
  redis.call('HINCRBY', KEYS[3], 'imagesCached', 1)
  redis.call('HINCRBY', KEYS[3], 'savedMicroUsd', ARGV[20])
end
if #KEYS < 5 or redis.call('EXISTS', KEYS[4]) == 0 then return 1 end
redis.call('HINCRBY', KEYS[4], ARGV[6], 1)
if tonumber(ARGV[13]) > 0 then redis.call('HINCRBY', KEYS[4], 'costMicroUsd', ARGV[13]) end
if ARGV[19] == '1' then
  redis.call('HINCRBY', KEYS[4], 'cached', 1)
  redis.call('HINCRBY', KEYS[4], 'savedMicroUsd', ARGV[20])
end
if ARGV[6] == 'failed' then
  -- Failures by code, and the batch's first failure announced once (HSETNX firstFailureAt).
  local data = cjson.decode(event_json).data or {}
  local err = data.error or {}
  local code = err.code or 'INTERNAL'
  redis.call('HINCRBY', KEYS[4], 'failedCode:' .. code, 1)
  if redis.call('HSETNX', KEYS[4], 'firstFailureAt', ARGV[10]) == 1 then
    add_batch_event(KEYS[4], KEYS[2], ARGV[2], 'batch.first_failure', ARGV[17], cjson.encode({
      id = ARGV[17], version = ${EVENT_SCHEMA_VERSION}, type = 'batch.first_failure', timestamp = ARGV[10],
      data = { batchId = ARGV[11], jobId = ARGV[7], error = { code = code, message = err.message or '' } }
    }))
  end
end
redis.call('HSET', KEYS[5], ARGV[7], ARGV[8])
local ttl = redis.call('PTTL', KEYS[4])
if ttl > 0 then redis.call('PEXPIRE', KEYS[5], ttl) end
if complete_batch(KEYS[4], KEYS[2], ARGV[2], ARGV[9], ARGV[10], ARGV[11], ARGV[18]) then return 2 end
return 1
`;

/** One line of a batch's results manifest (stored per job in the batch's results hash). */
export interface ManifestEntry {
  jobId: string;
  line?: number;
  rowKey?: string;
  status: JobOutcome;
  key?: string;
  sha256?: string;
  errorCode?: string;
}

/** One job's terminal event and what it changes (its batch's manifest line, its webhook). */
export interface JobPublication {
  event: JobEvent;
  outcome: JobOutcome;
  manifest: ManifestEntry;
  /**
   * The job's own webhook: the dispatcher reads it from the stream entry (never the event body).
   * A URL (a job queued before webhooks were stored by reference) is stored and published as one.
   */
  webhook?: WebhookRef | WebhookSpec | undefined;
  /**
   * Which incarnation of the job id this is: its creation time (BullMQ `job.timestamp`). A job id
   * comes from an idempotency key and can be re-used after a cancel or after retention removed the
   * job; the marker outlives the job, so without this a re-used id would find "already published".
   */
  incarnation: number | string;
}

export async function publishJobEvent(redis: Redis, publication: JobPublication, options: PublishOptions): Promise<PublishOutcome> {
  const { event, outcome, manifest, webhook, incarnation } = publication;
  const batchId = event.data.batchId;
  const keys = [emittedMarkerKey(options.prefix, event.data.jobId), eventsStreamKey(options.prefix), metricsTotalsKey(options.prefix)];
  if (batchId) keys.push(batchKey(options.prefix, batchId), batchResultsKey(options.prefix, batchId));
  // A later incarnation publishes under an id of its own, so consumers that de-duplicate by event
  // id (and the webhook dispatcher's delivery ids) do not drop it as a repeat of the earlier one.
  const cached = event.type === 'job.succeeded' && event.data.result.cached ? event.data.result.cachedFrom ?? { savedUsd: 0 } : undefined;
  const rerun = { ...event, id: eventIdFor(event.type, `${event.data.jobId}@${incarnation}`) } as JobEvent;
  let ref = webhook;
  if (ref && 'url' in ref) {
    await storeWebhookTargets(redis, options.prefix, [ref]);
    ref = webhookRefOf(ref);
  } else if (ref) {
    // The deliveries (and replays) of this event come later: the URL lives on from here.
    await redis.expire(webhookTargetKey(options.prefix, ref.endpointId), WEBHOOK_TARGET_TTL_SECONDS);
  }
  const args = [
    JSON.stringify(event),
    String(options.maxLen),
    String(options.markerTtlSeconds),
    event.type,
    event.id,
    outcome,
    event.data.jobId,
    JSON.stringify(manifest),
    batchId ? eventIdFor('batch.completed', batchId) : '',
    new Date().toISOString(),
    batchId ?? '',
    ref ? JSON.stringify(ref) : '',
    // The batch's spend so far, in micro-dollars (integers add up exactly).
    String(event.type === 'job.succeeded' ? Math.round(event.data.result.estimatedCostUsd * 1e6) : 0),
    String(incarnation),
    JSON.stringify(rerun),
    rerun.id,
    batchId ? eventIdFor('batch.first_failure', batchId) : '',
    batchId ? eventIdFor('batch.exhausted', batchId) : '',
    // A render-cache copy: counted apart, with what its generation would have cost.
    cached ? '1' : '',
    String(cached ? Math.round(cached.savedUsd * 1e6) : 0),
  ];
  const result = (await redis.eval(SCRIPT, keys.length, ...keys, ...args)) as number;
  return { published: result > 0, batchCompleted: result === 2 };
}

const ADJUST_TOTAL_SCRIPT = `${COMPLETE_BATCH_LUA}
if redis.call('EXISTS', KEYS[1]) == 0 then return -1 end
redis.call('HINCRBY', KEYS[1], 'total', ARGV[1])
if complete_batch(KEYS[1], KEYS[2], ARGV[5], ARGV[2], ARGV[3], ARGV[4], ARGV[6]) then return 1 end
return 0
`;

/**
 * Changes a batch's expected job count (a job added to it later, or fewer jobs than announced
 * because some were already in the queue), completing the batch if that makes it complete.
 * Returns false when the batch does not exist.
 */
export async function adjustBatchTotal(redis: Redis, batchId: string, delta: number, options: Pick<PublishOptions, 'prefix' | 'maxLen'>): Promise<boolean> {
  return (await evalBatchScript(redis, ADJUST_TOTAL_SCRIPT, batchId, String(delta), options)) >= 0;
}

/** Runs a script over one batch's record (KEYS[1]) and the stream (KEYS[2]), with what complete_batch needs. */
async function evalBatchScript(redis: Redis, script: string, batchId: string, argument: string, options: Pick<PublishOptions, 'prefix' | 'maxLen'>): Promise<number> {
  return (await redis.eval(
    script,
    2,
    batchKey(options.prefix, batchId),
    eventsStreamKey(options.prefix),
    argument,
    eventIdFor('batch.completed', batchId),
    new Date().toISOString(),
    batchId,
    String(options.maxLen),
    eventIdFor('batch.exhausted', batchId),
  )) as number;
}

const REOPEN_SCRIPT = `${COMPLETE_BATCH_LUA}
if redis.call('EXISTS', KEYS[1]) == 0 then return -1 end
redis.call('HINCRBY', KEYS[1], 'failed', -1)
local field = 'failedCode:' .. ARGV[1]
if redis.call('HINCRBY', KEYS[1], field, -1) <= 0 then redis.call('HDEL', KEYS[1], field) end
if redis.call('HDEL', KEYS[1], 'completedAt') == 1 then redis.call('HINCRBY', KEYS[1], 'round', 1) end
-- The retried job may have finished already (its event counted before this ran): then the batch
-- is complete again now.
if complete_batch(KEYS[1], KEYS[2], ARGV[5], ARGV[2], ARGV[3], ARGV[4], ARGV[6]) then return 1 end
return 0
`;

/**
 * A failed job of the batch was retried (it is waiting again): it no longer counts as failed (nor
 * under its code), and a completed batch is running again, in a new round, to complete once more
 * when its jobs are all terminal again. Called after the job was moved back: its new terminal
 * event and this rollback add up the same in either order. Returns false when the batch does
 * not exist.
 */
export async function reopenBatchJob(redis: Redis, batchId: string, failedCode: string, options: Pick<PublishOptions, 'prefix' | 'maxLen'>): Promise<boolean> {
  return (await evalBatchScript(redis, REOPEN_SCRIPT, batchId, failedCode, options)) >= 0;
}
