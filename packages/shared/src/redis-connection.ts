/**
 * Redis connections the way BullMQ wants them.
 *
 * - `worker`: `maxRetriesPerRequest: null`, so blocking commands wait out a Redis restart instead of
 *   failing jobs (BullMQ's production guide).
 * - `producer`: `enableOfflineQueue: false` and a short connect timeout, so an enqueue while Redis is
 *   down fails fast with an error naming REDIS_URL instead of hanging a request.
 */
import { Cluster, Redis, type RedisOptions } from 'ioredis';
import { AppError } from './errors.js';

export type RedisRole = 'worker' | 'producer';

export function createRedisConnection(url: string, role: RedisRole, extra: RedisOptions = {}): Redis {
  const options: RedisOptions =
    role === 'worker'
      ? { maxRetriesPerRequest: null, enableReadyCheck: true, ...extra }
      : { maxRetriesPerRequest: 1, enableOfflineQueue: false, connectTimeout: 5_000, ...extra };
  if (isClusterUrl(url)) return clusterConnection(url, role, options);
  // Keep ioredis from printing "Unhandled error event" on every reconnect; callers that care
  // attach their own listener, and `waitForRedis` turns the first failure into a clear error.
  const redis = new Redis(url, { lazyConnect: true, ...options });
  redis.on('error', () => {});
  return redis;
}

/**
 * `redis+cluster://[user:password@]host:port` (or `rediss+cluster://` for TLS): a Redis Cluster,
 * reached through that seed node. The key prefix must then carry a hash tag (`{zimage}`) so that
 * every key of a deployment lives in one slot, as BullMQ's and our Lua scripts need.
 */
export function isClusterUrl(url: string): boolean {
  return /^rediss?\+cluster:/i.test(url);
}

function clusterConnection(url: string, role: RedisRole, options: RedisOptions): Redis {
  const parsed = new URL(url.replace(/^(rediss?)\+cluster:/i, '$1:'));
  const tls = parsed.protocol === 'rediss:' ? {} : undefined;
  const cluster = new Cluster([{ host: parsed.hostname, port: Number(parsed.port || 6379) }], {
    lazyConnect: true,
    enableOfflineQueue: role === 'worker',
    enableReadyCheck: true,
    // The nodes announce their own addresses; TLS and credentials apply to each of them.
    redisOptions: {
      ...options,
      ...(parsed.username ? { username: decodeURIComponent(parsed.username) } : {}),
      ...(parsed.password ? { password: decodeURIComponent(parsed.password) } : {}),
      ...(tls ? { tls } : {}),
    },
  });
  cluster.on('error', () => {});
  // The commands zimage uses are the same on a Cluster (every key of a deployment is in one slot).
  return cluster as unknown as Redis;
}

/** Connects (if needed) and pings; throws REDIS_UNAVAILABLE naming REDIS_URL (without password). */
export async function waitForRedis(redis: Redis, url: string, timeoutMs = 5_000): Promise<void> {
  try {
    if (redis.status === 'wait') await withTimeout(redis.connect(), timeoutMs);
    await withTimeout(redis.ping(), timeoutMs);
  } catch (error) {
    throw new AppError('REDIS_UNAVAILABLE', `Cannot reach Redis at REDIS_URL=${redactRedisUrl(url)}: ${(error as Error).message}`, {
      cause: error,
    });
  }
}

/** `redis://:secret@host:6379/0` → `redis://:***@host:6379/0` */
export function redactRedisUrl(url: string): string {
  try {
    const parsed = new URL(url);
    if (parsed.password) parsed.password = '***';
    return parsed.toString();
  } catch {
    return '(unparseable REDIS_URL)';
  }
}

function withTimeout<T>(promise: Promise<T>, ms: number): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`timed out after ${ms} ms`)), ms);
    promise.then(
      (value) => {
        clearTimeout(timer);
        resolve(value);
      },
      (error: unknown) => {
        clearTimeout(timer);
        reject(error instanceof Error ? error : new Error(String(error)));
      },
    );
  });
}
