/**
 * Keeps each account's `PaceState` in Redis, shared by every worker process, and applies the pure
 * functions of `pace.ts` with compare-and-set: read, compute, write only if nobody wrote in
 * between, else try again. The arithmetic stays in one TypeScript place (and unit-tested); Redis
 * only guarantees that two workers never both take the same slot.
 *
 * Times are the workers' clocks: hosts sharing an account should run NTP (a skew of a few ms
 * only shifts slots by that much).
 */
import type { Redis } from 'ioredis';
import { initialPaceState, type PaceConfig, type PaceState } from './pace.js';

const CAS_SCRIPT = `
local current = redis.call('GET', KEYS[1])
if (current or '') ~= ARGV[1] then return 0 end
redis.call('SET', KEYS[1], ARGV[2], 'PX', ARGV[3])
return 1
`;

const STATE_TTL_MS = 24 * 3600 * 1000;
const MAX_TRIES = 50;

export interface PaceStore {
  update<T>(accountId: string, config: PaceConfig, change: (state: PaceState, now: number) => { state: PaceState; result: T }): Promise<T>;
  read(accountId: string, config: PaceConfig): Promise<PaceState>;
  /** Ids of every account with a stored pace (for `zimage resume` and visibility). */
  accounts(): Promise<string[]>;
}

/** Clears every account's "disabled" flag and cool-down (`zimage resume`). Returns the account ids. */
export async function enableAllAccounts(redis: Redis, prefix: string): Promise<string[]> {
  const ids: string[] = [];
  for (const key of await redis.keys(paceKey(prefix, '*'))) {
    for (let attempt = 0; attempt < MAX_TRIES; attempt++) {
      const raw = await redis.get(key);
      if (!raw) break;
      const state = JSON.parse(raw) as PaceState;
      const next = JSON.stringify({ ...state, disabledReason: null, blockedUntil: 0 });
      if ((await redis.eval(CAS_SCRIPT, 1, key, raw, next, String(STATE_TTL_MS))) === 1) break;
    }
    ids.push(key.slice(paceKey(prefix, '').length));
  }
  return ids;
}

/** A state written by an older version lacks newer fields; they start as in a fresh state. */
function parseState(raw: string, config: PaceConfig, now: number): PaceState {
  return { ...initialPaceState(config, now), ...(JSON.parse(raw) as Partial<PaceState>) };
}

export function paceKey(prefix: string, accountId: string): string {
  return `${prefix}:governor:${accountId}`;
}

export function createPaceStore(redis: Redis, prefix: string, now: () => number = Date.now): PaceStore {
  async function update<T>(accountId: string, config: PaceConfig, change: (state: PaceState, now: number) => { state: PaceState; result: T }): Promise<T> {
    const key = paceKey(prefix, accountId);
    for (let attempt = 0; attempt < MAX_TRIES; attempt++) {
      const raw = await redis.get(key);
      const time = now();
      const current = raw ? parseState(raw, config, time) : initialPaceState(config, time);
      const { state, result } = change(current, time);
      const written = (await redis.eval(CAS_SCRIPT, 1, key, raw ?? '', JSON.stringify(state), String(STATE_TTL_MS))) as number;
      if (written === 1) return result;
    }
    throw new Error(`pace of account ${accountId} is too contended (${MAX_TRIES} compare-and-set conflicts)`);
  }

  return {
    update,
    async read(accountId, config) {
      const raw = await redis.get(paceKey(prefix, accountId));
      return raw ? parseState(raw, config, now()) : initialPaceState(config, now());
    },
    async accounts() {
      const keys = await redis.keys(paceKey(prefix, '*'));
      return keys.map((k) => k.slice(paceKey(prefix, '').length));
    },
  };
}
