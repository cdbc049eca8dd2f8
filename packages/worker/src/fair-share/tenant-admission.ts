/**
 * Admission: moves held jobs from the tenants' lanes into BullMQ's waiting set, a short window at
 * a time, in the lanes' stride order (see `shared/src/fair-share/tenant-lanes.ts`). Every worker
 * runs it, whether or not fair share is on: jobs held while it was on are admitted after it is
 * turned off too.
 *
 * One script picks the jobs and records them as *admitting*; they are then promoted with BullMQ's
 * own promote. A worker that dies in between leaves them in the admitting set, where any worker's
 * sweep promotes them after ADMITTING_GRACE_MS. Only a job still held (its delay is the hold's)
 * is promoted, so a stale entry can never start a job early that waits for its backoff.
 */
import { FAIR_HOLD_DELAY_MS, fairShareKeys, GENERATE_JOB_NAME, type JobPayload, type JobResult, type Logger } from '@zimage/shared';
import { Job, type Queue } from 'bullmq';
import type { Redis } from 'ioredis';

/** An admitting entry this old is the sweep's (its worker died, or its job was not added yet). */
const ADMITTING_GRACE_MS = 10_000;
/** A lane entry whose job never appeared (its producer failed between lane and queue) is dropped after this. */
const MISSING_JOB_DROP_MS = 60_000;
/** Most jobs one admission round takes, so one round stays one short script. */
const MAX_PER_ROUND = 200;

// KEYS: active, idle pass, virtual time, weights, admitting, BullMQ wait, BullMQ prioritized, admitted this minute.
// ARGV: window, now (ms), lane key prefix, most to take.
const ADMIT = `
local waiting = redis.call('LLEN', KEYS[6]) + redis.call('ZCARD', KEYS[7])
local n = math.min(tonumber(ARGV[1]) - waiting, tonumber(ARGV[4]))
local ids = {}
while n > 0 do
  local top = redis.call('ZRANGE', KEYS[1], 0, 0, 'WITHSCORES')
  if #top == 0 then break end
  local lane, pass = top[1], tonumber(top[2])
  local laneKey = ARGV[3] .. lane
  local popped = redis.call('ZPOPMIN', laneKey)
  if #popped == 0 then
    redis.call('ZREM', KEYS[1], lane)
    redis.call('HSET', KEYS[2], lane, pass)
  else
    ids[#ids + 1] = popped[1]
    redis.call('ZADD', KEYS[5], ARGV[2], popped[1])
    redis.call('HINCRBY', KEYS[8], lane, 1)
    redis.call('SET', KEYS[3], pass)
    local weight = tonumber(redis.call('HGET', KEYS[4], lane) or '1')
    local nextPass = pass + 1 / weight
    if redis.call('EXISTS', laneKey) == 0 then
      redis.call('ZREM', KEYS[1], lane)
      redis.call('HSET', KEYS[2], lane, nextPass)
    else
      redis.call('ZADD', KEYS[1], nextPass, lane)
    end
    n = n - 1
  end
end
redis.call('EXPIRE', KEYS[8], 180)
return ids
`;

export interface TenantAdmissionOptions {
  redis: Redis;
  queue: Queue<JobPayload, JobResult>;
  prefix: string;
  logger: Logger;
  /** How many jobs should wait in BullMQ (ready for a worker slot) at most: the window. */
  window: () => number;
  /** How often a round runs, ms. @defaultValue 100 */
  intervalMs?: number;
  now?: () => number;
}

export interface TenantAdmission {
  /**
   * One round: admits what the window has room for, and sweeps admitting entries left behind.
   * Returns the ids taken from the lanes, in the order their turns came.
   */
  round(): Promise<string[]>;
}

/** Admission rounds in a loop, until `stop()`. */
export function startTenantAdmission(options: TenantAdmissionOptions): TenantAdmission & { stop(): void } {
  const admission = createTenantAdmission(options);
  let stopped = false;
  let timer: NodeJS.Timeout | undefined;
  const intervalMs = options.intervalMs ?? 100;
  const loop = () => {
    if (stopped) return;
    admission
      .round()
      // A full round means more may be waiting for room: the next one at once.
      .then((ids) => schedule(ids.length >= MAX_PER_ROUND ? 0 : intervalMs))
      .catch((error: unknown) => {
        options.logger.debug({ err: error }, 'Tenant admission round failed (Redis?); trying again');
        schedule(intervalMs * 10);
      });
  };
  const schedule = (ms: number) => {
    if (stopped) return;
    timer = setTimeout(loop, ms);
    timer.unref();
  };
  schedule(0);
  return {
    round: admission.round,
    stop() {
      stopped = true;
      if (timer) clearTimeout(timer);
    },
  };
}

export function createTenantAdmission(options: TenantAdmissionOptions): TenantAdmission {
  const { redis, queue, prefix, logger } = options;
  const now = options.now ?? Date.now;
  const keys = fairShareKeys(prefix);
  const jobKeyPrefix = queue.toKey('');

  async function promoteHeld(ids: readonly string[], sweeping: boolean): Promise<void> {
    if (ids.length === 0) return;
    const pipeline = redis.pipeline();
    for (const id of ids) pipeline.hget(jobKeyPrefix + id, 'delay').zscore(keys.admitting, id);
    const replies = (await pipeline.exec()) ?? [];
    const done: string[] = [];
    await Promise.all(
      ids.map(async (id, n) => {
        const delay = replies[2 * n]?.[1] as string | null | undefined;
        const since = Number(replies[2 * n + 1]?.[1] ?? now());
        if (delay === null || delay === undefined) {
          // Not in the queue (yet): its producer is between the lane and the queue, or the job was removed.
          if (sweeping && now() - since > MISSING_JOB_DROP_MS) done.push(id);
          return;
        }
        if (Number(delay) !== FAIR_HOLD_DELAY_MS) {
          done.push(id); // admitted already (or never held): nothing to do
          return;
        }
        try {
          // Only the id is used: BullMQ's promote script reads the rest from the job's hash.
          await new Job<JobPayload, JobResult>(queue, GENERATE_JOB_NAME, {} as JobPayload, {}, id).promote();
          done.push(id);
        } catch (error) {
          // Not delayed any more (cancelled, removed) is done; anything else is the sweep's to retry.
          if ((await queue.getJobState(id).catch(() => 'delayed')) !== 'delayed') done.push(id);
          else logger.warn({ err: error, jobId: id }, 'Admitting a held job failed; the sweep retries it');
        }
      }),
    );
    if (done.length > 0) await redis.zrem(keys.admitting, ...done);
  }

  async function round(): Promise<string[]> {
    const time = now();
    const minute = Math.floor(time / 60_000);
    const ids = (await redis.eval(
      ADMIT,
      8,
      keys.active,
      keys.idlePass,
      keys.virtualTime,
      keys.weights,
      keys.admitting,
      queue.toKey('wait'),
      queue.toKey('prioritized'),
      `${keys.admittedPrefix}${minute}`,
      String(Math.max(0, Math.floor(options.window()))),
      String(time),
      keys.lanePrefix,
      String(MAX_PER_ROUND),
    )) as string[];
    await promoteHeld(ids, false);
    const left = await redis.zrangebyscore(keys.admitting, '-inf', String(time - ADMITTING_GRACE_MS), 'LIMIT', 0, MAX_PER_ROUND);
    await promoteHeld(left, true);
    return ids;
  }

  return { round };
}
