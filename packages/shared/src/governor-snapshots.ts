/**
 * The governors' views of each account, as the workers share them in Redis (every 10 s, one hash
 * field per account): what `/metrics` and the `/quota` page show. A view older than a minute is
 * from a worker that stopped, and is left out.
 */
import type { Redis } from 'ioredis';
import { metricsGovernorKey } from './queue-names.js';

const SNAPSHOT_MAX_AGE_MS = 60_000;

export interface GovernorSnapshot {
  id: string;
  region: string;
  /** The fleet-wide pace now, requests a minute. */
  rpm: number;
  /** The highest pace the account has shown it can take (learned from throttles), or null. */
  ceilingRpm: number | null;
  targetRpm: number;
  sentLastMinute: number;
  inFlight: number;
  probing: boolean;
  utilisation: number;
  /** Throttled share of the calls over the last minute. */
  throttleRatio: number;
  blockedForMs: number;
  disabledReason: string | null;
  /** When the worker wrote it (ISO). */
  at: string;
}

export async function readGovernorSnapshots(redis: Redis, prefix: string, now = Date.now()): Promise<GovernorSnapshot[]> {
  const hash = await redis.hgetall(metricsGovernorKey(prefix));
  return Object.values(hash)
    .flatMap((value) => {
      try {
        return [JSON.parse(value) as GovernorSnapshot];
      } catch {
        return [];
      }
    })
    .filter((s) => now - Date.parse(s.at) < SNAPSHOT_MAX_AGE_MS)
    .sort((a, b) => a.id.localeCompare(b.id));
}
