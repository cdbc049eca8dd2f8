/**
 * Storage health is fleet-wide state: one worker's failing put says little, several in a row
 * across the fleet say storage is down for everyone. Then the fleet stops taking new jobs (which
 * would each be paid for and then parked too) until a probe write succeeds.
 *
 * - a write refused for every key (`STORAGE_REFUSED`: 403, NoSuchBucket, disk full, read-only)
 *   trips at once;
 * - other write failures count in Redis; `threshold` in a row (none more than `windowMs` apart)
 *   trip; any stored image resets the count.
 * Tripping pauses the queue (`STORAGE_REFUSED`); the pause supervisor probes and resumes.
 */
import { AppError, storageHealthKey, type Logger } from '@zimage/shared';
import type { Redis } from 'ioredis';
import type { QueuePause } from './queue-pause.js';

export interface StorageHealthConfig {
  /** Consecutive failed writes, fleet-wide, that stop the fleet. @defaultValue 3 */
  threshold: number;
  /** A failure older than this no longer counts. @defaultValue 60000 */
  windowMs: number;
}

export const DEFAULT_STORAGE_HEALTH: StorageHealthConfig = { threshold: 3, windowMs: 60_000 };

export interface StorageHealth {
  /** A paid image was stored. */
  recordSuccess(): void;
  /** Writing a paid image failed; resolves once the fleet has been stopped when it should be. */
  recordFailure(error: AppError): Promise<void>;
}

/** A success clears the fleet's count at most this often per process (unless it saw a failure). */
const CLEAR_EVERY_MS = 1_000;

export function createStorageHealth(options: { redis: Redis; prefix: string; pause: QueuePause; logger: Logger; config?: Partial<StorageHealthConfig> }): StorageHealth {
  const config = { ...DEFAULT_STORAGE_HEALTH, ...options.config };
  const key = storageHealthKey(options.prefix);
  let sawFailure = false;
  let clearedAt = 0;

  return {
    recordSuccess() {
      const now = Date.now();
      if (!sawFailure && now - clearedAt < CLEAR_EVERY_MS) return;
      sawFailure = false;
      clearedAt = now;
      void options.redis.del(key).catch(() => {});
    },
    async recordFailure(error) {
      sawFailure = true;
      let trip = error.code === 'STORAGE_REFUSED';
      let count = 1;
      if (!trip) {
        const results = await options.redis.multi().incr(key).pexpire(key, config.windowMs).exec();
        count = Number(results?.[0]?.[1] ?? 1);
        trip = count >= config.threshold;
      }
      if (!trip) return;
      const why = error.code === 'STORAGE_REFUSED' ? error.message : `${count} storage writes failed in a row across the fleet; the last: ${error.code}: ${error.message}`;
      await options.pause.pause(new AppError('STORAGE_REFUSED', why, { cause: error, details: { ...error.details, consecutiveFailures: count } }));
    },
  };
}
