/**
 * When a failed webhook delivery is tried again: an immediate first attempt, then one retry per
 * entry of the schedule. The default follows Svix (5 s, 5 min, 30 min, 2 h, 5 h, 10 h, 10 h: eight
 * attempts over about 27 h); each delay gets ±20% jitter so that a receiver coming back up is not
 * hit by every retry at the same second. Tests shrink it through ZIMAGE_WEBHOOK_RETRY_SCHEDULE.
 */

export const DEFAULT_RETRY_SCHEDULE = '5s,5m,30m,2h,5h,10h,10h';
export const RETRY_JITTER = 0.2;

const UNIT_MS: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000 };

/** "5s,5m,2h" → [5000, 300000, 7200000]. Throws TypeError naming the bad entry. */
export function parseRetrySchedule(value: string): number[] {
  const entries = value.split(',').map((e) => e.trim()).filter(Boolean);
  if (entries.length === 0) throw new TypeError('must list at least one delay, e.g. 5s,5m,30m');
  if (entries.length > 20) throw new TypeError('must list at most 20 delays');
  return entries.map((entry) => {
    const match = /^(\d+(?:\.\d+)?)(ms|s|m|h)$/.exec(entry);
    if (!match) throw new TypeError(`"${entry}" is not a delay like 500ms, 5s, 5m or 2h`);
    const ms = Number(match[1]) * (UNIT_MS[match[2] as string] as number);
    if (ms > 48 * 3_600_000) throw new TypeError(`"${entry}" is longer than 48h`);
    return Math.round(ms);
  });
}

/**
 * Delay before the next attempt after `attemptsMade` attempts (1 = the first one failed), or
 * undefined when the schedule is exhausted. A receiver's Retry-After (already capped by
 * `parseRetryAfter`, at MAX_RETRY_AFTER_MS) can lengthen that delay, never shorten it: `Retry-After: 0` must not burn the schedule in a second.
 * `random` returns [0, 1).
 */
export function nextRetryDelay(schedule: readonly number[], attemptsMade: number, retryAfterMs?: number, random: () => number = Math.random): number | undefined {
  const base = schedule[attemptsMade - 1];
  if (base === undefined) return undefined;
  const scheduled = Math.round(base * (1 - RETRY_JITTER + 2 * RETRY_JITTER * random()));
  if (retryAfterMs === undefined) return scheduled;
  return Math.max(scheduled, retryAfterMs);
}
