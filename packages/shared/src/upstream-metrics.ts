/**
 * Fleet-wide upstream metrics kept in Redis: every worker adds its calls (one pipeline per call),
 * the API's /metrics reads the sums. Workers have no HTTP server of their own, and a scrape of
 * one process would see only its share anyway.
 */
import type { Redis } from 'ioredis';
import { metricsUpstreamKey } from './queue-names.js';

/** Histogram buckets for upstream latency, seconds (generation takes 1.5–4 s, more with prompt_extend). */
export const LATENCY_BUCKETS_SECONDS = [0.25, 0.5, 1, 2, 3, 5, 8, 13, 20, 30, 60] as const;

/**
 * Records one upstream call: `code` is 'ok' or the DashScope code / our error code. Three
 * increments: the request, the one latency bucket the call falls in (`hist|region|le`, not
 * cumulative; the reader sums them) and the latency sum. Incrementing every cumulative bucket
 * was up to 14 commands a call, a visible share of a worker's CPU with a fast upstream.
 */
export async function recordUpstreamCall(redis: Redis, prefix: string, region: string, code: string, latencyMs: number): Promise<void> {
  const key = metricsUpstreamKey(prefix);
  const seconds = latencyMs / 1000;
  const le = LATENCY_BUCKETS_SECONDS.find((bound) => seconds <= bound) ?? '+Inf';
  await redis
    .pipeline()
    .hincrby(key, `req|${region}|${code}`, 1)
    .hincrby(key, `hist|${region}|${le}`, 1)
    .hincrbyfloat(key, `lat|${region}|sum`, seconds)
    .exec();
}

export interface UpstreamMetrics {
  requests: { region: string; code: string; count: number }[];
  latency: { region: string; buckets: { le: string; count: number }[]; sum: number; count: number }[];
}

export async function readUpstreamMetrics(redis: Redis, prefix: string): Promise<UpstreamMetrics> {
  const hash = await redis.hgetall(metricsUpstreamKey(prefix));
  const requests: UpstreamMetrics['requests'] = [];
  // Per region: counts by bucket bound, `hist|` ones per bucket, `lat|` ones (written by versions
  // before 2026-11) already cumulative; both are turned into cumulative counts below and added.
  const regions = new Map<string, { perBucket: Map<string, number>; cumulative: Map<string, number>; sum: number }>();
  const regionOf = (region: string) => {
    let entry = regions.get(region);
    if (!entry) regions.set(region, (entry = { perBucket: new Map(), cumulative: new Map(), sum: 0 }));
    return entry;
  };
  for (const [field, value] of Object.entries(hash)) {
    const [kind, region = '', rest = ''] = field.split('|');
    if (kind === 'req') requests.push({ region, code: rest, count: Number(value) });
    else if (kind === 'hist') regionOf(region).perBucket.set(rest, Number(value));
    else if (kind === 'lat' && rest === 'sum') regionOf(region).sum = Number(value);
    else if (kind === 'lat') regionOf(region).cumulative.set(rest, Number(value));
  }
  const bounds = [...LATENCY_BUCKETS_SECONDS.map(String), '+Inf'];
  const latency = [...regions].map(([region, entry]) => {
    let running = 0;
    // Cumulative buckets in order, with every bucket present (0 when no call was that fast). A
    // bound no longer in the list (the buckets changed) still counts, in +Inf.
    for (const [le, count] of entry.perBucket) if (!bounds.includes(le)) entry.perBucket.set('+Inf', (entry.perBucket.get('+Inf') ?? 0) + count);
    const buckets = bounds.map((le) => {
      running += entry.perBucket.get(le) ?? 0;
      return { le, count: running + (entry.cumulative.get(le) ?? 0) };
    });
    return { region, buckets, sum: entry.sum, count: buckets.at(-1)?.count ?? 0 };
  });
  return { requests, latency };
}
