/**
 * What fair share is doing now, for the `/quota` page, `GET /v1/quota` and `/metrics`: each lane's
 * waiting jobs and weight, its target share among the lanes with work, and the share of the jobs
 * admitted over the last two minutes it actually got.
 */
import type { Redis } from 'ioredis';
import { fairShareKeys, laneKey, NO_TENANT_LANE } from './tenant-lanes.js';
import { DEFAULT_TENANT_WEIGHT, shareTargets } from './tenant-weights.js';

export interface LaneStatus {
  /** The tenant, or null for the jobs without one. */
  tenant: string | null;
  weight: number;
  /** Jobs held in the lane, waiting for their turn. */
  waiting: number;
  /** Its share of the pace while the lanes with work now keep it (0 without work). */
  targetShare: number;
  /** Jobs admitted from it over the last two minutes, and their share of all admitted. */
  admittedRecently: number;
  share: number;
}

export interface FairShareStatus {
  enabled: boolean;
  lanes: LaneStatus[];
}

export async function readFairShare(redis: Redis, prefix: string, now = Date.now()): Promise<FairShareStatus> {
  const keys = fairShareKeys(prefix);
  const minute = Math.floor(now / 60_000);
  const [enabled, active, weights, thisMinute, lastMinute] = await Promise.all([
    redis.get(keys.enabled),
    redis.zrange(keys.active, '0', '-1'),
    redis.hgetall(keys.weights),
    redis.hgetall(`${keys.admittedPrefix}${minute}`),
    redis.hgetall(`${keys.admittedPrefix}${minute - 1}`),
  ]);
  const admitted = new Map<string, number>();
  for (const counts of [thisMinute, lastMinute]) for (const [lane, n] of Object.entries(counts)) admitted.set(lane, (admitted.get(lane) ?? 0) + Number(n));
  const lanes = [...new Set([...active, ...admitted.keys()])].sort();
  const waiting = await Promise.all(lanes.map((lane) => redis.zcard(laneKey(prefix, lane))));
  const weightOf = (lane: string) => Number(weights[lane] ?? DEFAULT_TENANT_WEIGHT);
  const withWork = lanes.filter((_lane, i) => (waiting[i] ?? 0) > 0);
  const targets = shareTargets(withWork.map((lane) => ({ lane, weight: weightOf(lane) })));
  const totalAdmitted = [...admitted.values()].reduce((a, b) => a + b, 0);
  return {
    enabled: enabled === '1',
    lanes: lanes.map((lane, i) => ({
      tenant: lane === NO_TENANT_LANE ? null : lane,
      weight: weightOf(lane),
      waiting: waiting[i] ?? 0,
      targetShare: round(targets.get(lane) ?? 0),
      admittedRecently: admitted.get(lane) ?? 0,
      share: totalAdmitted > 0 ? round((admitted.get(lane) ?? 0) / totalAdmitted) : 0,
    })),
  };
}

function round(value: number): number {
  return Math.round(value * 1000) / 1000;
}
