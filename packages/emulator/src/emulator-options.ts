import type { FaultKind } from './fault-catalogue.js';
import { isFaultKind } from './fault-catalogue.js';

export type Region = 'singapore' | 'beijing';

/** Prompt moderation codes that trigger words can produce. */
export type ModerationCode = 'DataInspectionFailed' | 'IPInfringementSuspect';

export interface BurstOptions {
  /** Whether the ramp detector (`Throttling.BurstRate`) runs. Default `true`. */
  enabled: boolean;
  /** Allowed multiple of the baseline rate. Default `2`. */
  factor: number;
  /**
   * Requests per second always allowed, whatever the baseline (req/s).
   * Default `undefined`, meaning the current `rps`: a client that keeps within the per-second
   * quota never trips the ramp guard from idle. Set it lower (for example 1) to model a strict
   * guard that punishes sudden ramps, as the quota benchmark does.
   */
  floorPerSecond?: number | undefined;
  /** Length of the baseline window that precedes the current second (ms). Default `10000`. */
  baselineWindowMs: number;
}

/**
 * How the account quota is enforced (see each model's file for its rule and its true capacity):
 * - `'per-second'`: sliding 1 s (`rps`) + sliding 60 s (`rpm`) + the ramp guard (`burst`).
 * - `'fixed-window'`: at most `limit` per window of `windowMs`, windows aligned to the start.
 * - `'sliding-log'`: at most `limit` in any trailing `windowMs`.
 * - `'token-bucket'`: `bucketSize` tokens, refilled at `rpm / 60` per second, starting full.
 * - `'concurrency'`: at most `maxInFlight` accepted and unanswered, plus `rps`/`rpm` sliding windows.
 * - `'drift'`: a per-second rule whose quota follows the `drift` schedule.
 *
 * `limit` = `max(1, floor(rpm × windowMs / 60000))`. The start is the first generation request
 * the limiter sees after creation, or after a `configure()` that rebuilt it.
 */
export type LimiterModel = 'per-second' | 'fixed-window' | 'sliding-log' | 'token-bucket' | 'concurrency' | 'drift';

export const LIMITER_MODELS: readonly LimiterModel[] = [
  'per-second',
  'fixed-window',
  'sliding-log',
  'token-bucket',
  'concurrency',
  'drift',
];

/** One step of the `drift` schedule: from `atMs` after the limiter's start, the quota is `rpm`. */
export interface DriftStep {
  readonly atMs: number;
  readonly rpm: number;
}

export interface QuotaOptions {
  /**
   * Limiter model. Default `'per-second'`. Changing it (or a field listed as "rebuilds") through
   * `configure()` builds a fresh limiter: its history, counts and start time are reset.
   */
  model: LimiterModel;
  /**
   * Accepted requests allowed in any trailing 60 s (req/min). `Infinity` = unlimited. Default `120`.
   * The window and bucket models derive their limit or refill rate from it. Read live (no rebuild).
   */
  rpm: number;
  /**
   * Accepted requests allowed in any trailing 1 s (req/s). `Infinity` = unlimited. Default `2`.
   * Used by `'per-second'` and `'concurrency'` only. Read live (no rebuild).
   */
  rps: number;
  burst: BurstOptions;
  /** Window length of `'fixed-window'` and `'sliding-log'` (ms). Default `60000`. Rebuilds. */
  windowMs: number;
  /** Capacity of the `'token-bucket'` (tokens, an integer). Default `10`. Rebuilds. */
  bucketSize: number;
  /** `'concurrency'`: most requests accepted and not yet answered. Default `4`. Rebuilds. */
  maxInFlight: number;
  /**
   * `'drift'`: the quota schedule, sorted by `atMs`, the first step at `atMs: 0`; the last step
   * holds forever. Empty = a constant `rpm`. Default `[{ atMs: 0, rpm: 120 }]`. Rebuilds.
   */
  drift: readonly DriftStep[];
  /**
   * When set, every 429 carries `Retry-After: <ceil(value)>` (s). Default `undefined` (no header):
   * the real API is not known to send one.
   */
  retryAfterSeconds?: number | undefined;
}

export interface LatencyOptions {
  /** Lower bound of the uniform generation latency (ms). Default `1500`. */
  minMs: number;
  /** Upper bound of the uniform generation latency (ms). Default `4000`. */
  maxMs: number;
  /** Lower bound of the extra latency added when `prompt_extend` is true (ms). Default `3000`. */
  extendExtraMinMs: number;
  /** Upper bound of that extra latency (ms). Default `8000`. */
  extendExtraMaxMs: number;
}

export interface FaultOptions {
  /**
   * Probability (0..1) of each fault, drawn once per request that got past auth, validation,
   * quota and trigger words. Default `{}` (no random faults).
   */
  rates: Partial<Record<FaultKind, number>>;
  /**
   * Case-insensitive substrings of the (truncated) prompt that make the prompt moderation fail
   * with 400 and that code. Default
   * `{ DataInspectionFailed: ['zimage-test-unsafe'], IPInfringementSuspect: ['zimage-test-ip'] }`.
   */
  triggerWords: Record<ModerationCode, readonly string[]>;
  /** How long a `'slow'` fault waits before answering (ms). Default `30000`. */
  slowMs: number;
}

export interface EmulatorOptions {
  /** Interface to listen on. Default `'127.0.0.1'`. Fixed at creation. */
  host: string;
  /** TCP port; `0` picks a free one. Default `0`. Fixed at creation. */
  port: number;
  /** Decides the per-image price counted in `billedUsd`. Default `'singapore'`. */
  region: Region;
  /** Accepted API keys. Default `undefined`: any key starting with `sk-` is accepted. */
  apiKeys?: readonly string[] | undefined;
  quota: QuotaOptions;
  latency: LatencyOptions;
  /** Lifetime of the signed image URLs (ms). Default `86400000` (24 h), as documented upstream. */
  imageTtlMs: number;
  /**
   * How far the image host's clock runs ahead of this machine's (ms; negative: behind). Default 0.
   * With it, OSS answers "Request has expired" while the client's clock says the link still lives.
   */
  imageHostClockSkewMs: number;
  /** Largest accepted request body (bytes); larger bodies get 400. Default `1048576` (1 MiB). */
  maxBodyBytes: number;
  faults: FaultOptions;
  /**
   * How downloads produce image bytes. `'rendered'` (default) draws a pattern derived from the
   * prompt, seed and size and encodes it (about 5 ms for 512×512). `'template'` encodes one image
   * per size once and makes each download distinct with a text chunk naming the image: still a
   * valid PNG of exactly the requested size, at almost no CPU, for benchmarks that measure the
   * client's own overhead rather than the emulator's encoder.
   */
  images: 'rendered' | 'template';
  /**
   * Seed of the PRNG behind fault rates, latency and absent `seed`s. Default `undefined`: a
   * random seed. Setting it through `configure()` reseeds.
   */
  randomSeed?: number | undefined;
}

type DeepPartial<T> = T extends readonly unknown[]
  ? T
  : T extends object
    ? { [K in keyof T]?: DeepPartial<T[K]> }
    : T;

/** What callers pass: any subset of the options, nested objects merged field by field. */
export type EmulatorOptionsInput = DeepPartial<EmulatorOptions>;

function deepFreeze<T>(value: T): T {
  if (typeof value === 'object' && value !== null) {
    for (const inner of Object.values(value)) deepFreeze(inner);
    Object.freeze(value);
  }
  return value;
}

/** The single home of every default (deep-frozen; resolving clones it). */
export const EMULATOR_DEFAULTS: EmulatorOptions = deepFreeze<EmulatorOptions>({
  host: '127.0.0.1',
  port: 0,
  region: 'singapore',
  apiKeys: undefined,
  quota: {
    model: 'per-second',
    rpm: 120,
    rps: 2,
    burst: { enabled: true, factor: 2, floorPerSecond: undefined, baselineWindowMs: 10_000 },
    windowMs: 60_000,
    bucketSize: 10,
    maxInFlight: 4,
    drift: [{ atMs: 0, rpm: 120 }],
    retryAfterSeconds: undefined,
  },
  latency: { minMs: 1500, maxMs: 4000, extendExtraMinMs: 3000, extendExtraMaxMs: 8000 },
  imageTtlMs: 24 * 60 * 60 * 1000,
  imageHostClockSkewMs: 0,
  maxBodyBytes: 1024 * 1024,
  faults: {
    rates: {},
    triggerWords: {
      DataInspectionFailed: ['zimage-test-unsafe'],
      IPInfringementSuspect: ['zimage-test-ip'],
    },
    slowMs: 30_000,
  },
  images: 'rendered',
  randomSeed: undefined,
});

/** `floorPerSecond` as the burst guard uses it, resolving the derived default. */
export function effectiveBurstFloor(quota: QuotaOptions): number {
  return quota.burst.floorPerSecond ?? quota.rps;
}

function isPlainObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/**
 * Deep-merges `patch` into `base`. Nested objects merge field by field, arrays are replaced, and a
 * key present in `patch` with the value `undefined` resets that field to its value in `defaults`.
 */
function merge(base: unknown, patch: unknown, defaults: unknown): unknown {
  if (!isPlainObject(patch) || !isPlainObject(base)) return patch;
  const out: Record<string, unknown> = { ...base };
  const defs = isPlainObject(defaults) ? defaults : {};
  for (const [key, value] of Object.entries(patch)) {
    if (value === undefined) out[key] = structuredClone(defs[key]);
    else if (isPlainObject(value) && isPlainObject(base[key])) out[key] = merge(base[key], value, defs[key]);
    else out[key] = Array.isArray(value) ? [...(value as unknown[])] : value;
  }
  return out;
}

/** Returns `current` with `patch` merged in, validated. Throws `RangeError`/`TypeError` when invalid. */
export function mergeEmulatorOptions(
  current: EmulatorOptions,
  patch: EmulatorOptionsInput,
): EmulatorOptions {
  const merged = merge(current, patch, EMULATOR_DEFAULTS) as EmulatorOptions;
  validateEmulatorOptions(merged);
  return merged;
}

export function resolveEmulatorOptions(input: EmulatorOptionsInput = {}): EmulatorOptions {
  return mergeEmulatorOptions(structuredClone(EMULATOR_DEFAULTS), input);
}

function check(condition: boolean, what: string): void {
  if (!condition) throw new RangeError(`Invalid emulator option: ${what}`);
}

const nonNegative = (n: unknown): boolean => typeof n === 'number' && Number.isFinite(n) && n >= 0;
// A limit of 0 would reject every request, which fault rates express better; Infinity = unlimited.
const positiveLimit = (n: unknown): boolean => typeof n === 'number' && !Number.isNaN(n) && n > 0;

function validateEmulatorOptions(o: EmulatorOptions): void {
  check(typeof o.host === 'string' && o.host.length > 0, 'host must be a non-empty string');
  check(Number.isInteger(o.port) && o.port >= 0 && o.port <= 65535, 'port must be an integer in [0, 65535]');
  check(o.region === 'singapore' || o.region === 'beijing', "region must be 'singapore' or 'beijing'");
  check(
    o.apiKeys === undefined ||
      (Array.isArray(o.apiKeys) && o.apiKeys.every((k) => typeof k === 'string' && k.length > 0)),
    'apiKeys must be undefined or an array of non-empty strings',
  );
  check(positiveLimit(o.quota.rpm), 'quota.rpm must be > 0 (Infinity = unlimited)');
  check(positiveLimit(o.quota.rps), 'quota.rps must be > 0 (Infinity = unlimited)');
  check(typeof o.quota.burst.enabled === 'boolean', 'quota.burst.enabled must be a boolean');
  check(positiveLimit(o.quota.burst.factor), 'quota.burst.factor must be > 0');
  check(
    o.quota.burst.floorPerSecond === undefined || positiveLimit(o.quota.burst.floorPerSecond),
    'quota.burst.floorPerSecond must be > 0',
  );
  check(
    nonNegative(o.quota.burst.baselineWindowMs) && o.quota.burst.baselineWindowMs > 0,
    'quota.burst.baselineWindowMs must be a finite number > 0',
  );
  validateLimiterOptions(o.quota);
  check(
    o.quota.retryAfterSeconds === undefined || nonNegative(o.quota.retryAfterSeconds),
    'quota.retryAfterSeconds must be a finite number >= 0',
  );
  const l = o.latency;
  check(
    [l.minMs, l.maxMs, l.extendExtraMinMs, l.extendExtraMaxMs].every(nonNegative),
    'latency values must be finite numbers >= 0',
  );
  check(l.minMs <= l.maxMs, 'latency.minMs must be <= latency.maxMs');
  check(l.extendExtraMinMs <= l.extendExtraMaxMs, 'latency.extendExtraMinMs must be <= extendExtraMaxMs');
  check(nonNegative(o.imageTtlMs) && o.imageTtlMs > 0, 'imageTtlMs must be a finite number > 0');
  check(typeof o.imageHostClockSkewMs === 'number' && Number.isFinite(o.imageHostClockSkewMs), 'imageHostClockSkewMs must be a finite number');
  check(Number.isInteger(o.maxBodyBytes) && o.maxBodyBytes > 0, 'maxBodyBytes must be a positive integer');
  check(nonNegative(o.faults.slowMs), 'faults.slowMs must be a finite number >= 0');
  check(isPlainObject(o.faults.rates), 'faults.rates must be an object');
  for (const [kind, rate] of Object.entries(o.faults.rates)) {
    check(isFaultKind(kind), `faults.rates has unknown fault kind '${kind}'`);
    check(nonNegative(rate) && (rate as number) <= 1, `faults.rates['${kind}'] must be in [0, 1]`);
  }
  for (const [code, words] of Object.entries(o.faults.triggerWords)) {
    check(
      code === 'DataInspectionFailed' || code === 'IPInfringementSuspect',
      `faults.triggerWords has unknown code '${code}'`,
    );
    check(
      Array.isArray(words) && words.every((w) => typeof w === 'string' && w.trim().length > 0),
      `faults.triggerWords['${code}'] must be an array of non-empty strings`,
    );
  }
  check(o.images === 'rendered' || o.images === 'template', "images must be 'rendered' or 'template'");
  check(
    o.randomSeed === undefined || (typeof o.randomSeed === 'number' && Number.isFinite(o.randomSeed)),
    'randomSeed must be a finite number',
  );
}

function validateLimiterOptions(q: QuotaOptions): void {
  check(
    (LIMITER_MODELS as readonly unknown[]).includes(q.model),
    `quota.model must be one of ${LIMITER_MODELS.map((m) => `'${m}'`).join(', ')}`,
  );
  check(nonNegative(q.windowMs) && q.windowMs > 0, 'quota.windowMs must be a finite number > 0');
  check(Number.isInteger(q.bucketSize) && q.bucketSize >= 1, 'quota.bucketSize must be an integer >= 1');
  check(Number.isInteger(q.maxInFlight) && q.maxInFlight >= 1, 'quota.maxInFlight must be an integer >= 1');
  check(Array.isArray(q.drift), 'quota.drift must be an array of { atMs, rpm } steps');
  q.drift.forEach((step: unknown, i) => {
    const ok =
      isPlainObject(step) &&
      nonNegative(step['atMs']) &&
      typeof step['rpm'] === 'number' &&
      Number.isFinite(step['rpm']) &&
      step['rpm'] > 0;
    check(ok, `quota.drift[${i}] must be { atMs: finite number >= 0, rpm: finite number > 0 }`);
  });
  check(q.drift.length === 0 || q.drift[0]?.atMs === 0, 'quota.drift must start with a step at atMs 0');
  check(
    q.drift.every((step, i) => i === 0 || step.atMs > (q.drift[i - 1]?.atMs ?? -Infinity)),
    'quota.drift must be sorted by strictly increasing atMs',
  );
}
