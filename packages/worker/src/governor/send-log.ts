/**
 * What the fleet sent to one account, and what came back, per second over the last minute:
 * the governor's memory of its own traffic. A rate limiter judges a trailing window (one second,
 * one minute), so the pace can only reason about a limiter's answers with the same window in hand.
 *
 * Pure and small (three arrays of at most 63 counts) so it lives inside the pace state in Redis.
 * Sends are counted by their slot's second (slots may lie up to a second ahead); answers by the
 * second they arrived.
 */

/** Seconds remembered: a trailing 60 s counted in whole seconds, plus slots reserved ahead. */
export const SEND_LOG_SECONDS = 63;

export interface SendLog {
  /** Epoch second of index 0; index i holds second `second - i`. */
  second: number;
  sent: number[];
  accepted: number[];
  throttled: number[];
}

export type SendLogField = 'sent' | 'accepted' | 'throttled';

export function emptySendLog(now: number): SendLog {
  return { second: Math.floor(now / 1000), sent: [], accepted: [], throttled: [] };
}

/** Moves the log's head to `second` (never backwards), dropping what falls out of the minute. */
function advance(log: SendLog, second: number): void {
  const shift = second - log.second;
  if (shift <= 0) return;
  const gap = new Array<number>(Math.min(shift, SEND_LOG_SECONDS)).fill(0);
  for (const field of ['sent', 'accepted', 'throttled'] as const) {
    log[field] = [...gap, ...log[field]].slice(0, SEND_LOG_SECONDS);
  }
  log.second = second;
}

/** Counts one event at time `at` (epoch ms). Events older than the log's minute are dropped. */
export function recordEvent(log: SendLog, field: SendLogField, at: number): void {
  const second = Math.floor(at / 1000);
  advance(log, second);
  const index = log.second - second;
  if (index >= SEND_LOG_SECONDS) return;
  const counts = log[field];
  while (counts.length <= index) counts.push(0);
  counts[index] = (counts[index] ?? 0) + 1;
}

/** Events in the `seconds` whole seconds that end with the second holding `at` (inclusive). */
export function countUpTo(log: SendLog, field: SendLogField, at: number, seconds: number): number {
  const last = Math.floor(at / 1000);
  let sum = 0;
  for (let s = last - seconds + 1; s <= last; s++) sum += log[field][log.second - s] ?? 0;
  return sum;
}

/** Events per minute over the `seconds` whole seconds before the one holding `now`. */
export function ratePerMinute(log: SendLog, field: SendLogField, now: number, seconds: number): number {
  return (countUpTo(log, field, now - 1000, seconds) / seconds) * 60;
}
