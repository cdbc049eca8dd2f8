/**
 * Fair share between tenants, on plain BullMQ (its Pro groups are not available): while fair share
 * is on, a job does not enter the queue's waiting set when it is enqueued. It is added to BullMQ
 * *held* — delayed by FAIR_HOLD_DELAY_MS, a delay nothing else uses — and its id goes into its
 * tenant's lane (jobs without a tenant share one lane). The workers' admission
 * (`worker/src/fair-share/tenant-admission.ts`) keeps only a short window of jobs waiting in
 * BullMQ and fills it from the lanes by stride scheduling, so the order in which jobs reach the
 * accounts' pace is the tenants' weighted turn, whatever one of them has queued.
 *
 * Stride scheduling: every lane with jobs has a *pass* (a sorted set, lane → pass). The lane with
 * the lowest pass gives the next job and its pass grows by 1 / weight; so while several lanes have
 * jobs, each gets turns in proportion to its weight, and a lane that empties leaves the set at
 * once (its turns go to the others). The virtual time is the pass of the last turn given: a lane
 * that comes back starts at no less than it, so a tenant that was idle cannot bank turns and one
 * that arrives late gets its share from its first job on. Within a lane, jobs go by priority, then
 * in the order they came (the lane's score is BullMQ priority × 2³² + a sequence number).
 *
 * Every way back into BullMQ's waiting set other than the admission — a retry's backoff, a
 * requeue, a budget's wake, a bulk retry, a stalled job — skips the lanes. So the admission gives
 * each job it admits a *turn* (a ticket), and a worker about to call upstream for a job without
 * one, while another tenant's lane has work, puts it back at the front of its own lane instead
 * (`takeTurn`): whatever path a job took, its call is made at its tenant's turn.
 *
 * The hold is also the fallback: a job whose lane entry were lost would still run when its delay
 * ends (after a week), never be stuck for ever.
 */
import type { Redis } from 'ioredis';

/** The delay of a held job: a week and a millisecond, a value no other delay in zimage takes. */
export const FAIR_HOLD_DELAY_MS = 7 * 86_400_000 + 1;

/**
 * Whether a job's delay is a hold. A worker that puts a job back in its lane moves it with BullMQ's
 * `moveToDelayed`, which counts the delay from its own clock reading: a few ms short of the hold.
 * No other delay in zimage comes near a week (the longest is a parked image's 6 h).
 */
export function isHeldDelay(delay: number | undefined): boolean {
  return delay !== undefined && delay > FAIR_HOLD_DELAY_MS - 60_000 && delay <= FAIR_HOLD_DELAY_MS;
}

/** The lane of jobs without a tenant (tenant ids cannot be empty). */
export const NO_TENANT_LANE = '';

export function laneOf(tenant: string | undefined): string {
  return tenant ?? NO_TENANT_LANE;
}

export interface FairShareKeys {
  /** "1" while producers hold new jobs in lanes (written by the workers from ZIMAGE_FAIR_SHARE). */
  enabled: string;
  /** Lanes with jobs: lane → pass. */
  active: string;
  /** The pass a lane had when it emptied: lane → pass. */
  idlePass: string;
  /** The pass of the last turn given. */
  virtualTime: string;
  sequence: string;
  /** Tenant → weight (default 1). */
  weights: string;
  /** Jobs taken from a lane whose promotion into BullMQ's waiting set is not confirmed yet: id → ms. */
  admitting: string;
  /** Jobs admitted whose turn is not used yet: id → ms admitted (see takeTurn). */
  turns: string;
  /** Per minute (epoch minute), lane → jobs admitted: the shares the `/quota` page shows. */
  admittedPrefix: string;
  lanePrefix: string;
}

export function fairShareKeys(prefix: string): FairShareKeys {
  const base = `${prefix}:fair`;
  return {
    enabled: `${base}:enabled`,
    active: `${base}:active`,
    idlePass: `${base}:idle-pass`,
    virtualTime: `${base}:vtime`,
    sequence: `${base}:seq`,
    weights: `${base}:weights`,
    admitting: `${base}:admitting`,
    turns: `${base}:turns`,
    admittedPrefix: `${base}:admitted:`,
    lanePrefix: `${base}:lane:`,
  };
}

export function laneKey(prefix: string, lane: string): string {
  return `${fairShareKeys(prefix).lanePrefix}${lane}`;
}

// A lane that gets jobs joins the schedule at no less than the virtual time (no banked turns).
// KEYS[1..3]: active, idle pass, virtual time. ARGV[1]: the lane.
const ACTIVATE_LANE = `
if not redis.call('ZSCORE', KEYS[1], ARGV[1]) then
  local idle = tonumber(redis.call('HGET', KEYS[2], ARGV[1]) or '0')
  local now = tonumber(redis.call('GET', KEYS[3]) or '0')
  redis.call('ZADD', KEYS[1], math.max(idle, now), ARGV[1])
end
`;

// KEYS: active, idle pass, virtual time, sequence, the lane. ARGV: the lane, then (BullMQ priority, job id) pairs.
const HOLD = `
for i = 2, #ARGV, 2 do
  local seq = redis.call('INCR', KEYS[4]) % 4294967296
  redis.call('ZADD', KEYS[5], tonumber(ARGV[i]) * 4294967296 + seq, ARGV[i + 1])
end
${ACTIVATE_LANE}
return 1
`;

// KEYS: active, idle pass, virtual time, turns, enabled, the lane. ARGV: the lane, job id, BullMQ priority, lane key prefix.
// 0: go on (it has its turn, fair share is off, or no other lane has jobs); 1: put back in its lane.
const TAKE_TURN = `
local function go()
  -- An entry of its own left in its lane (it was also promoted another way) must not take a turn.
  redis.call('ZREM', KEYS[6], ARGV[2])
  return 0
end
if redis.call('ZREM', KEYS[4], ARGV[2]) == 1 then return go() end
if redis.call('GET', KEYS[5]) ~= '1' then return go() end
-- Another lane with jobs (the schedule drops a lane that emptied only at its next turn).
local waiting = false
for _, lane in ipairs(redis.call('ZRANGE', KEYS[1], 0, -1)) do
  if lane ~= ARGV[1] and redis.call('EXISTS', ARGV[4] .. lane) == 1 then
    waiting = true
    break
  end
end
if not waiting then return go() end
-- The front of its priority in its lane (sequence 0): it has waited its turn once already.
redis.call('ZADD', KEYS[6], tonumber(ARGV[3]) * 4294967296, ARGV[2])
${ACTIVATE_LANE}
return 1
`;

export interface HeldJob {
  jobId: string;
  tenant: string | undefined;
  /** BullMQ priority (1 is served first). */
  bullPriority: number;
}

/** Whether producers hold new jobs in lanes now. */
export async function fairShareEnabled(redis: Redis, prefix: string): Promise<boolean> {
  return (await redis.get(fairShareKeys(prefix).enabled)) === '1';
}

/**
 * Puts jobs in their lanes — before they are added to BullMQ held, so that a crash in between
 * leaves a lane entry without a job (dropped by the admission), never a held job without an entry.
 */
export async function holdInLanes(redis: Redis, prefix: string, jobs: readonly HeldJob[]): Promise<void> {
  const byLane = new Map<string, string[]>();
  for (const job of jobs) {
    const lane = laneOf(job.tenant);
    const args = byLane.get(lane) ?? [];
    args.push(String(job.bullPriority), job.jobId);
    byLane.set(lane, args);
  }
  if (byLane.size === 0) return;
  const keys = fairShareKeys(prefix);
  const pipeline = redis.pipeline();
  for (const [lane, args] of byLane) pipeline.eval(HOLD, 5, keys.active, keys.idlePass, keys.virtualTime, keys.sequence, laneKey(prefix, lane), lane, ...args);
  for (const [error] of (await pipeline.exec()) ?? []) if (error) throw error;
}

// KEYS: active, admitting. ARGV: lane key prefix.
const COUNT_HELD = `
local n = redis.call('ZCARD', KEYS[2])
for _, lane in ipairs(redis.call('ZRANGE', KEYS[1], 0, -1)) do
  n = n + redis.call('ZCARD', ARGV[1] .. lane)
end
return n
`;

/**
 * How many jobs are held now: in the lanes with work, and taken from a lane but not promoted yet.
 * They sit in BullMQ's delayed set; listings and metrics count them as waiting. An entry whose job
 * never reached the queue is counted until the admission drops it (a minute).
 */
export async function countHeldJobs(redis: Redis, prefix: string): Promise<number> {
  const keys = fairShareKeys(prefix);
  return Number(await redis.eval(COUNT_HELD, 2, keys.active, keys.admitting, keys.lanePrefix));
}

/**
 * Called by a worker about to call upstream for a job: `go` when the job has its turn (the
 * admission gave it one), fair share is off, or no other tenant has jobs waiting; `held` when it
 * came back into the queue another way while another tenant waits — it is then in its lane again
 * (at the front of its priority), and the worker must move it to BullMQ's delayed set held
 * (FAIR_HOLD_DELAY_MS). The lane entry comes first, as in holdInLanes; the admission leaves an
 * entry whose job is still active for a later round.
 */
export async function takeTurn(redis: Redis, prefix: string, job: HeldJob): Promise<'go' | 'held'> {
  const keys = fairShareKeys(prefix);
  const lane = laneOf(job.tenant);
  const held = await redis.eval(TAKE_TURN, 6, keys.active, keys.idlePass, keys.virtualTime, keys.turns, keys.enabled, laneKey(prefix, lane), lane, job.jobId, String(job.bullPriority), keys.lanePrefix);
  return held === 1 ? 'held' : 'go';
}

/** Takes a job out of its lane and drops its turn (a job that was cancelled or removed). */
export async function leaveLane(redis: Redis, prefix: string, tenant: string | undefined, jobId: string): Promise<void> {
  await redis.multi().zrem(laneKey(prefix, laneOf(tenant)), jobId).zrem(fairShareKeys(prefix).turns, jobId).exec();
}
