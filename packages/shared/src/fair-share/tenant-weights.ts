/**
 * Tenant weights: how many turns a tenant gets for each turn of a weight-1 tenant while both have
 * jobs waiting. Kept in Redis (tenant → weight), so that every worker's admission reads the same;
 * set from ZIMAGE_TENANT_WEIGHTS at worker start-up or by `producer.setTenantWeight`.
 */
import type { Redis } from 'ioredis';
import { z } from 'zod';
import { nameSchema } from '../ids.js';
import { fairShareKeys } from './tenant-lanes.js';

export const DEFAULT_TENANT_WEIGHT = 1;
export const MAX_TENANT_WEIGHT = 1000;

export const tenantIdSchema = nameSchema;
export const tenantWeightSchema = z
  .number({ error: 'must be a number' })
  .int({ error: `must be a whole number from 1 to ${MAX_TENANT_WEIGHT}` })
  .min(1, { error: `must be a whole number from 1 to ${MAX_TENANT_WEIGHT}` })
  .max(MAX_TENANT_WEIGHT, { error: `must be a whole number from 1 to ${MAX_TENANT_WEIGHT}` });

export type TenantWeights = ReadonlyMap<string, number>;

/**
 * `tenant=weight` pairs separated by commas (ZIMAGE_TENANT_WEIGHTS), e.g. `acme=3,globex=1`.
 * Returns the weights, or the problems, each naming the pair and the rule.
 */
export function parseTenantWeights(text: string): { ok: true; weights: TenantWeights } | { ok: false; problems: string[] } {
  const weights = new Map<string, number>();
  const problems: string[] = [];
  for (const [n, raw] of text.split(',').entries()) {
    const pair = raw.trim();
    if (pair === '' && text.trim() === '') continue;
    const [tenant = '', weight, extra] = pair.split('=').map((part) => part.trim());
    const where = `pair ${n + 1} (${JSON.stringify(pair)})`;
    if (weight === undefined || extra !== undefined) {
      problems.push(`${where}: must be tenant=weight`);
      continue;
    }
    const id = tenantIdSchema.safeParse(tenant);
    if (!id.success) problems.push(`${where}: tenant ${id.error.issues[0]?.message ?? 'is invalid'}`);
    const value = tenantWeightSchema.safeParse(weight === '' ? Number.NaN : Number(weight));
    if (!value.success) problems.push(`${where}: weight ${value.error.issues[0]?.message ?? 'is invalid'}`);
    if (id.success && value.success) {
      if (weights.has(tenant)) problems.push(`${where}: tenant ${tenant} is given twice`);
      weights.set(tenant, value.data);
    }
  }
  return problems.length > 0 ? { ok: false, problems } : { ok: true, weights };
}

export async function readTenantWeights(redis: Redis, prefix: string): Promise<Map<string, number>> {
  const flat = await redis.hgetall(fairShareKeys(prefix).weights);
  return new Map(Object.entries(flat).map(([tenant, weight]) => [tenant, Number(weight)]));
}

/** Sets weights (a weight of 1 is the default and is stored as none). */
export async function writeTenantWeights(redis: Redis, prefix: string, weights: TenantWeights): Promise<void> {
  if (weights.size === 0) return;
  const key = fairShareKeys(prefix).weights;
  const pipeline = redis.pipeline();
  for (const [tenant, weight] of weights) {
    if (weight === DEFAULT_TENANT_WEIGHT) pipeline.hdel(key, tenant);
    else pipeline.hset(key, tenant, String(weight));
  }
  await pipeline.exec();
}

/** Turns on (or off) holding new jobs in lanes; jobs already held are admitted either way. */
export async function writeFairShareEnabled(redis: Redis, prefix: string, enabled: boolean): Promise<void> {
  await redis.set(fairShareKeys(prefix).enabled, enabled ? '1' : '0');
}

/**
 * Each lane's share of the pace while exactly these lanes have jobs waiting: its weight over the
 * sum of theirs. (What the admission converges to; the bench and `/quota` compare against it.)
 */
export function shareTargets(lanes: ReadonlyArray<{ lane: string; weight: number }>): Map<string, number> {
  const total = lanes.reduce((sum, l) => sum + l.weight, 0);
  return new Map(lanes.map((l) => [l.lane, total > 0 ? l.weight / total : 0]));
}
