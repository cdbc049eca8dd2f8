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
import { fairShareKeys, isHeldDelay, GENERATE_JOB_NAME, type JobPayload, type JobResult, type Logger } from '@zimage/shared';
import { Job, type Queue } from 'bullmq';
import type { Redis } from 'ioredis';

/** An admitting entry this old is the sweep's (its worker died, or its job was not added yet). */
const ADMITTING_GRACE_MS = 10_000;
/** A lane entry whose job never appeared (its producer failed between lane and queue) is dropped after this. */
const MISSING_JOB_DROP_MS = 60_000;
/** Most jobs one admission round takes, so one round stays one short script. */
const MAX_PER_ROUND = 200;
/** A turn the admission gave and no worker used within this long is dropped (its job ended without a call). */
const TURN_KEEP_MS = 3_600_000;
/** An admitting entry whose job is still active (a worker is putting it back in its lane) is looked at again this soon. */
const ACTIVE_RECHECK_MS = 1_000;
/** How long a round waits for such a job to be moved to held before leaving it to the recheck: polls × ms. */
const ACTIVE_POLLS = 8;
const ACTIVE_POLL_MS = 25;

// KEYS: active, idle pass, virtual time, weights, admitting, BullMQ wait, BullMQ prioritized, admitted this minute, turns.
// ARGV: window, now (ms), lane key prefix, most to take, oldest admitting entry still in flight (ms),
// how long a turn keeps (ms).
// Jobs other workers took but have not promoted yet count as waiting: several workers' rounds
// together still fill the window once.
const ADMIT = `
local waiting = redis.call('LLEN', KEYS[6]) + redis.call('ZCARD', KEYS[7]) + redis.call('ZCOUNT', KEYS[5], ARGV[5], '+inf')
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
    redis.call('ZADD', KEYS[9], ARGV[2], popped[1])
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
-- A turn unused for this long belongs to a job that ended without a call (cached, cancelled);
-- should its job still come, it only waits in its lane once more.
redis.call('ZREMRANGEBYSCORE', KEYS[9], '-inf', tonumber(ARGV[2]) - tonumber(ARGV[6]))
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
  let failing = false;
  let timer: NodeJS.Timeout | undefined;
  const intervalMs = options.intervalMs ?? 100;
  const loop = () => {
    if (stopped) return;
    admission
      .round()
      // A full round means more may be waiting for room: the next one at once.
      .then((ids) => {
        if (failing) options.logger.info('Tenant admission works again');
        failing = false;
        schedule(ids.length >= MAX_PER_ROUND ? 0 : intervalMs);
      })
      .catch((error: unknown) => {
        // Once per run of failures: held jobs wait while it fails, so an operator must hear of it.
        if (!failing) options.logger.warn({ err: error }, 'Tenant admission failed; held jobs wait until it works again (retrying)');
        failing = true;
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

  /**
   * Where a job that is not plainly held stands. The state is read first, then the delay: BullMQ's
   * moveToDelayed writes both in one script, so a job read active and then with a hold's delay
   * has just been held, and one read in any other state has its delay for good.
   */
  async function standing(id: string): Promise<'held' | 'active' | 'missing' | 'moved-on'> {
    const state = await queue.getJobState(id);
    const delay = await redis.hget(jobKeyPrefix + id, 'delay');
    if (delay === null) return 'missing';
    if (isHeldDelay(Number(delay))) return 'held';
    return state === 'active' ? 'active' : 'moved-on';
  }

  /**
   * A job a worker puts back in its lane (takeTurn) is still active for the moment between its
   * lane entry and its move to held, and its turn may come in that moment: wait for the move
   * briefly, so that it takes this turn rather than a recheck's.
   */
  async function standingSoon(id: string): Promise<'held' | 'active' | 'missing' | 'moved-on'> {
    let where = await standing(id);
    for (let i = 0; where === 'active' && i < ACTIVE_POLLS; i++) {
      await new Promise((resolve) => setTimeout(resolve, ACTIVE_POLL_MS));
      where = await standing(id);
    }
    return where;
  }

  /** `sweep`: these are entries left behind (by a worker that died, or a job not there yet). */
  async function promoteHeld(ids: readonly string[], { sweep }: { sweep: boolean }): Promise<void> {
    if (ids.length === 0) return;
    const pipeline = redis.pipeline();
    for (const id of ids) pipeline.hget(jobKeyPrefix + id, 'delay').zscore(keys.admitting, id);
    const replies = (await pipeline.exec()) ?? [];
    const done: string[] = [];
    const missing: string[] = [];
    const recheck: string[] = [];
    await Promise.all(
      ids.map(async (id, n) => {
        const delay = replies[2 * n]?.[1] as string | null | undefined;
        const since = Number(replies[2 * n + 1]?.[1] ?? now());
        // Plainly held (the common case) is promoted at once; anything else is looked at closer.
        const where = delay !== null && delay !== undefined && isHeldDelay(Number(delay)) ? 'held' : await standingSoon(id);
        if (where === 'missing') {
          // Not in the queue (yet): its producer is between the lane and the queue, or the job was removed.
          if (sweep && now() - since > MISSING_JOB_DROP_MS) missing.push(id);
          return;
        }
        if (where === 'active') {
          // A worker is putting it back in its lane and has not moved it yet: a recheck soon.
          recheck.push(id);
          return;
        }
        if (where === 'moved-on') {
          done.push(id); // admitted already, waiting for a backoff, or never held: nothing to do
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
    const tidy = redis.multi();
    if (done.length + missing.length > 0) tidy.zrem(keys.admitting, ...done, ...missing);
    if (missing.length > 0) tidy.zrem(keys.turns, ...missing);
    // Looked at again by the sweep soon, not after the whole grace.
    for (const id of recheck) tidy.zadd(keys.admitting, now() - ADMITTING_GRACE_MS + ACTIVE_RECHECK_MS, id);
    if (done.length + missing.length + recheck.length > 0) await tidy.exec();
  }

  async function round(): Promise<string[]> {
    const time = now();
    const minute = Math.floor(time / 60_000);
    const ids = (await redis.eval(
      ADMIT,
      9,
      keys.active,
      keys.idlePass,
      keys.virtualTime,
      keys.weights,
      keys.admitting,
      queue.toKey('wait'),
      queue.toKey('prioritized'),
      `${keys.admittedPrefix}${minute}`,
      keys.turns,
      String(Math.max(0, Math.floor(options.window()))),
      String(time),
      keys.lanePrefix,
      String(MAX_PER_ROUND),
      String(time - ADMITTING_GRACE_MS),
      String(TURN_KEEP_MS),
    )) as string[];
    await promoteHeld(ids, { sweep: false });
    const left = await redis.zrangebyscore(keys.admitting, '-inf', String(time - ADMITTING_GRACE_MS), 'LIMIT', 0, MAX_PER_ROUND);
    await promoteHeld(left, { sweep: true });
    return ids;
  }

  return { round };
}
