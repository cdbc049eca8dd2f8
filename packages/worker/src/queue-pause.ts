/**
 * The fleet's stop switch: the BullMQ queue paused with a recorded reason (read by `zimage status`,
 * `/readyz` and `/metrics`), and the matching resume. Workers pause for faults that would hit every
 * job the same way (a storage that refuses writes, an upstream outage, a bad key); a supervisor
 * resumes the pauses that can heal by themselves, and `zimage resume` resumes any.
 */
import { ERROR_CATALOGUE, pauseReasonKey, type AppError, type ErrorCode, type Logger } from '@zimage/shared';
import type { Queue } from 'bullmq';
import type { Redis } from 'ioredis';

export interface PauseReason {
  code: ErrorCode;
  message: string;
  action: string;
  at: string;
}

export interface QueuePause {
  /** Pauses the queue for `error`, recording why; loud once per pause. */
  pause(error: AppError): Promise<void>;
  /** The recorded reason, when the queue is paused for one. */
  reason(): Promise<PauseReason | undefined>;
  /** Resumes only when the queue is paused for `code` (never a pause for another reason). */
  resumeIf(code: ErrorCode, why: string): Promise<boolean>;
}

// Compare-and-delete: a pause recorded for another reason meanwhile is left alone.
const CLEAR_IF_CODE = `
local reason = redis.call('GET', KEYS[1])
if not reason then return 0 end
local ok, decoded = pcall(cjson.decode, reason)
if not ok or decoded.code ~= ARGV[1] then return 0 end
redis.call('DEL', KEYS[1])
return 1
`;

export function createQueuePause(options: { queue: Queue; redis: Redis; prefix: string; logger: Logger }): QueuePause {
  const { queue, redis, logger } = options;
  const key = pauseReasonKey(options.prefix);
  return {
    async pause(error) {
      const wasPaused = await queue.isPaused();
      const action = ERROR_CATALOGUE[error.code].action;
      const reason: PauseReason = { code: error.code, message: error.message, action, at: new Date().toISOString() };
      // The first reason stands until it is cleared: a self-healing pause (storage) must not
      // overwrite one that waits for an operator, nor the reverse (its supervisor would resume).
      await redis.set(key, JSON.stringify(reason), 'NX');
      await queue.pause();
      // Every worker that meets the fault gets here; only the first one logs.
      if (!wasPaused) logger.fatal({ err: error, action }, `QUEUE PAUSED — ${error.code}: ${error.message}. ${action}`);
    },
    async reason() {
      const raw = await redis.get(key);
      if (!raw) return undefined;
      try {
        return JSON.parse(raw) as PauseReason;
      } catch {
        return undefined;
      }
    },
    async resumeIf(code, why) {
      if (((await redis.eval(CLEAR_IF_CODE, 1, key, code)) as number) !== 1) return false;
      await queue.resume();
      // A pause recorded between the clear and the resume stays a pause.
      if ((await redis.exists(key)) === 1) await queue.pause();
      logger.warn({ code }, `QUEUE RESUMED — ${code} cleared: ${why}`);
      return true;
    },
  };
}
