/**
 * A fleet-wide circuit breaker per account, for upstream faults that hit every job alike (a 503
 * outage, a model that is down): without it each job spends its attempts in half a minute and
 * fails, and a 40-second outage fails the whole backlog.
 *
 * - closed: calls go through. `threshold` failures in a row with the same signature (our code and
 *   the upstream's) from *different* jobs open it; one job failing repeatedly does not.
 * - open: no call for `cooldownMs`; jobs that meet it go back to the queue with their attempts.
 * - half-open: after the cool-down one job at a time (a probe lock) makes a real call. Success
 *   closes the breaker; a failure opens it again for twice as long (up to `maxCooldownMs`).
 * State lives in Redis (one hash per account), so every worker process agrees.
 */
import { circuitBreakerKey } from '@zimage/shared';
import type { Redis } from 'ioredis';

export interface CircuitBreakerConfig {
  /** Consecutive identical failures from different jobs that open the breaker. @defaultValue 5 */
  threshold: number;
  /** First cool-down, ms; doubled by each failed probe. @defaultValue 5000 */
  cooldownMs: number;
  /** @defaultValue 60000 */
  maxCooldownMs: number;
  /** A probe that neither succeeded nor failed by then (its worker died) frees the lock. @defaultValue 60000 */
  probeTtlMs: number;
  /** Failures further apart than this are not "in a row". @defaultValue 60000 */
  windowMs: number;
}

export const DEFAULT_CIRCUIT_BREAKER: CircuitBreakerConfig = { threshold: 5, cooldownMs: 5_000, maxCooldownMs: 60_000, probeTtlMs: 60_000, windowMs: 60_000 };

/** Whether a job may call the account now. */
export type Admission = { kind: 'closed' } | { kind: 'probe' } | { kind: 'wait'; retryInMs: number };

export type BreakerState = { state: 'closed' } | { state: 'open'; openUntil: number } | { state: 'half-open' };

export interface CircuitBreaker {
  admit(accountId: string, jobId: string): Promise<Admission>;
  /** Returns true when this failure opened (or re-opened) the breaker. */
  recordFailure(accountId: string, signature: string, jobId: string): Promise<boolean>;
  recordSuccess(accountId: string): void;
  state(accountId: string): Promise<BreakerState>;
}

// KEYS: hash, failing jobs (set), probe lock. ARGV: job id, now, probe ttl.
const ADMIT = `
local state = redis.call('HGET', KEYS[1], 'state')
if not state then return {'closed', 0} end
local now = tonumber(ARGV[2])
if state == 'open' then
  local until_ms = tonumber(redis.call('HGET', KEYS[1], 'openUntil')) or 0
  if now < until_ms then return {'wait', until_ms - now} end
end
if redis.call('SET', KEYS[3], ARGV[1], 'NX', 'PX', ARGV[3]) or redis.call('GET', KEYS[3]) == ARGV[1] then
  redis.call('HSET', KEYS[1], 'state', 'half-open')
  return {'probe', 0}
end
return {'wait', 1000}
`;

// ARGV: signature, job id, threshold, cooldown, max cooldown, now, window.
const FAILURE = `
local now = tonumber(ARGV[6])
local state = redis.call('HGET', KEYS[1], 'state')
if state == 'half-open' then
  local previous = tonumber(redis.call('HGET', KEYS[1], 'cooldownMs')) or tonumber(ARGV[4])
  local cooldown = math.min(tonumber(ARGV[5]), previous * 2)
  redis.call('HSET', KEYS[1], 'state', 'open', 'openUntil', now + cooldown, 'cooldownMs', cooldown)
  redis.call('DEL', KEYS[3])
  return 1
end
if state == 'open' then return 0 end
if redis.call('HGET', KEYS[1], 'signature') ~= ARGV[1] then
  redis.call('DEL', KEYS[2])
  redis.call('HSET', KEYS[1], 'signature', ARGV[1], 'count', 0)
end
if redis.call('SADD', KEYS[2], ARGV[2]) == 1 then redis.call('HINCRBY', KEYS[1], 'count', 1) end
redis.call('PEXPIRE', KEYS[1], ARGV[7])
redis.call('PEXPIRE', KEYS[2], ARGV[7])
if tonumber(redis.call('HGET', KEYS[1], 'count')) < tonumber(ARGV[3]) then return 0 end
redis.call('HSET', KEYS[1], 'state', 'open', 'openUntil', now + tonumber(ARGV[4]), 'cooldownMs', ARGV[4])
redis.call('PERSIST', KEYS[1])
redis.call('DEL', KEYS[2])
return 1
`;

/** A success clears the account's record at most this often per process (unless it saw trouble). */
const CLEAR_EVERY_MS = 1_000;
/** How long a "closed" answer is trusted locally before Redis is asked again. */
const CLOSED_CACHE_MS = 250;

export function createCircuitBreaker(options: { redis: Redis; prefix: string; config?: Partial<CircuitBreakerConfig>; now?: () => number }): CircuitBreaker {
  const config = { ...DEFAULT_CIRCUIT_BREAKER, ...options.config };
  const now = options.now ?? Date.now;
  const keys = (accountId: string) => {
    const hash = circuitBreakerKey(options.prefix, accountId);
    return [hash, `${hash}:jobs`, `${hash}:probe`];
  };
  const closedUntil = new Map<string, number>();
  const troubled = new Set<string>();
  const clearedAt = new Map<string, number>();

  return {
    async admit(accountId, jobId) {
      if ((closedUntil.get(accountId) ?? 0) > now()) return { kind: 'closed' };
      const [kind, retryInMs] = (await options.redis.eval(ADMIT, 3, ...keys(accountId), jobId, String(now()), String(config.probeTtlMs))) as [string, number];
      if (kind === 'closed') {
        closedUntil.set(accountId, now() + CLOSED_CACHE_MS);
        return { kind: 'closed' };
      }
      troubled.add(accountId);
      return kind === 'probe' ? { kind: 'probe' } : { kind: 'wait', retryInMs: Number(retryInMs) };
    },
    async recordFailure(accountId, signature, jobId) {
      troubled.add(accountId);
      closedUntil.delete(accountId);
      const args = [signature, jobId, config.threshold, config.cooldownMs, config.maxCooldownMs, now(), config.windowMs].map(String);
      return ((await options.redis.eval(FAILURE, 3, ...keys(accountId), ...args)) as number) === 1;
    },
    recordSuccess(accountId) {
      const time = now();
      if (!troubled.has(accountId) && time - (clearedAt.get(accountId) ?? 0) < CLEAR_EVERY_MS) return;
      troubled.delete(accountId);
      clearedAt.set(accountId, time);
      void options.redis.del(...keys(accountId)).catch(() => {});
    },
    async state(accountId) {
      const [state, openUntil] = await options.redis.hmget(keys(accountId)[0]!, 'state', 'openUntil');
      if (state === 'open') return { state: 'open', openUntil: Number(openUntil ?? 0) };
      if (state === 'half-open') return { state: 'half-open' };
      return { state: 'closed' };
    },
  };
}

/** Failures that say the upstream is down for everyone (not this job's input, not the account). */
export function outageSignature(code: string, upstreamCode: unknown, status: unknown): string | undefined {
  const outage = ['UPSTREAM_UNAVAILABLE', 'UPSTREAM_INTERNAL', 'UPSTREAM_GATEWAY', 'NETWORK_ERROR', 'NETWORK_TIMEOUT'];
  if (!outage.includes(code)) return undefined;
  return [code, typeof upstreamCode === 'string' ? upstreamCode : '', typeof status === 'number' ? String(status) : ''].join('|');
}
