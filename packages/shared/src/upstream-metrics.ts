/**
 * Fleet-wide upstream metrics kept in Redis: every worker adds its calls (one pipeline per call),
 * the API's /metrics reads the sums. Workers have no HTTP server of their own, and a scrape of
 * one process would see only its share anyway.
 */
import type { Redis } from 'ioredis';
import { metricsUpstreamKey } from './queue-names.js';

/** Histogram buckets for upstream latency, seconds (generation takes 1.5–4 s, more with prompt_extend). */
export const LATENCY_BUCKETS_SECONDS = [0.25, 0.5, 1, 2, 3, 5, 8, 13, 20, 30, 60] as const;

/** Records one upstream call: `code` is 'ok' or the DashScope code / our error code. */
export async function recordUpstreamCall(redis: Redis, prefix: string, region: string, code: string, latencyMs: number): Promise<void> {
  const key = metricsUpstreamKey(prefix);
  const seconds = latencyMs / 1000;
  const pipeline = redis.pipeline().hincrby(key, `req|${region}|${code}`, 1);
  for (const le of LATENCY_BUCKETS_SECONDS) if (seconds <= le) pipeline.hincrby(key, `lat|${region}|${le}`, 1);
  pipeline.hincrby(key, `lat|${region}|+Inf`, 1).hincrbyfloat(key, `lat|${region}|sum`, seconds);
  await pipeline.exec();
}

export interface UpstreamMetrics {
  requests: { region: string; code: string; count: number }[];
  latency: { region: string; buckets: { le: string; count: number }[]; sum: number; count: number }[];
}

export async function readUpstreamMetrics(redis: Redis, prefix: string): Promise<UpstreamMetrics> {
  const hash = await redis.hgetall(metricsUpstreamKey(prefix));
  const requests: UpstreamMetrics['requests'] = [];
  const latency = new Map<string, UpstreamMetrics['latency'][number]>();
  for (const [field, value] of Object.entries(hash)) {
    const [kind, region = '', rest = ''] = field.split('|');
    if (kind === 'req') requests.push({ region, code: rest, count: Number(value) });
    if (kind !== 'lat') continue;
    const entry = latency.get(region) ?? { region, buckets: [], sum: 0, count: 0 };
    latency.set(region, entry);
    if (rest === 'sum') entry.sum = Number(value);
    else {
      entry.buckets.push({ le: rest, count: Number(value) });
      if (rest === '+Inf') entry.count = Number(value);
    }
  }
  for (const entry of latency.values()) {
    // Cumulative buckets in order, with every bucket present (0 when no call was that fast).
    entry.buckets = [...LATENCY_BUCKETS_SECONDS.map(String), '+Inf'].map((le) => ({ le, count: entry.buckets.find((b) => b.le === le)?.count ?? 0 }));
  }
  return { requests, latency: [...latency.values()] };
}
