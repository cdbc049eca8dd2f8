/**
 * What a pipeline's ticks last did, for `zimage schedule list` and `GET /v1/schedules`: when one
 * last ran, the batch it made, and the last error (kept, with its time, after later ticks
 * succeed, so that a failure at 03:00 is still there to read at 09:00).
 *
 * One Redis hash beside the definitions, a JSON value per pipeline id. Written by the tick that
 * runs (the schedule runner); a removed pipeline's record goes with it.
 */
import type { Redis } from 'ioredis';

export interface ScheduleRun {
  /** When a tick last ran (ISO), whatever its outcome. */
  lastRunAt?: string;
  /** The batch the last successful tick made. */
  lastBatchId?: string;
  lastError?: { code: string; message: string; at: string };
}

export function scheduleRunsKey(prefix: string): string {
  return `${prefix}:schedule-runs`;
}

export type TickOutcome = { ok: true; batchId: string } | { ok: false; code: string; message: string };

/** Records one tick's outcome at `at`. Ticks of one pipeline do not overlap (BullMQ runs each once). */
export async function recordTick(redis: Redis, prefix: string, scheduleId: string, outcome: TickOutcome, at: Date): Promise<void> {
  const previous = (await readScheduleRuns(redis, prefix, [scheduleId])).get(scheduleId) ?? {};
  const when = at.toISOString();
  const next: ScheduleRun = outcome.ok
    ? { ...previous, lastRunAt: when, lastBatchId: outcome.batchId }
    : { ...previous, lastRunAt: when, lastError: { code: outcome.code, message: outcome.message, at: when } };
  await redis.hset(scheduleRunsKey(prefix), scheduleId, JSON.stringify(next));
}

export async function readScheduleRuns(redis: Redis, prefix: string, ids: readonly string[]): Promise<Map<string, ScheduleRun>> {
  const runs = new Map<string, ScheduleRun>();
  if (ids.length === 0) return runs;
  const values = await redis.hmget(scheduleRunsKey(prefix), ...ids);
  ids.forEach((id, i) => {
    const raw = values[i];
    if (!raw) return;
    try {
      runs.set(id, JSON.parse(raw) as ScheduleRun);
    } catch {
      // An unreadable record shows as "never ran" rather than failing the listing.
    }
  });
  return runs;
}

export async function forgetScheduleRuns(redis: Redis, prefix: string, scheduleId: string): Promise<void> {
  await redis.hdel(scheduleRunsKey(prefix), scheduleId);
}
