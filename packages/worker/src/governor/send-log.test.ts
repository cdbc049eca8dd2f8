import { describe, expect, it } from 'vitest';
import { countUpTo, emptySendLog, ratePerMinute, recordEvent, SEND_LOG_SECONDS, type SendLog } from './send-log.js';

const T0 = 1_700_000_000_000; // on a second boundary
const S0 = T0 / 1000;

function logWith(events: readonly number[], field: 'sent' | 'accepted' | 'throttled' = 'sent', from = T0): SendLog {
  const log = emptySendLog(from);
  for (const at of events) recordEvent(log, field, at);
  return log;
}

describe('send log: per-second counts of the last minute', () => {
  it('starts empty at the second holding now', () => {
    expect(emptySendLog(T0 + 1_999)).toEqual({ second: S0 + 1, sent: [], accepted: [], throttled: [] });
  });

  it('counts an event in the second holding it, newest second first', () => {
    const log = logWith([T0, T0 + 999, T0 + 1_000, T0 + 2_500, T0 + 2_999]);
    expect(log.second).toBe(S0 + 2);
    expect(log.sent).toEqual([2, 1, 2]);
    expect(countUpTo(log, 'accepted', T0 + 2_999, 3)).toBe(0);
    expect(countUpTo(log, 'throttled', T0 + 2_999, 3)).toBe(0);
  });

  it('keeps the three fields in step: recording one moves the head of all', () => {
    const log = logWith([T0], 'accepted');
    recordEvent(log, 'throttled', T0 + 3_000);
    recordEvent(log, 'sent', T0 + 1_000);
    expect(log.second).toBe(S0 + 3);
    expect(log.accepted).toEqual([0, 0, 0, 1]);
    expect(log.throttled).toEqual([1, 0, 0]);
    expect(log.sent).toEqual([0, 0, 1]);
  });

  it('shifts over a gap with zeros, never keeping more than SEND_LOG_SECONDS seconds', () => {
    const log = logWith([T0, T0, T0 + 1_000]);
    recordEvent(log, 'sent', T0 + 11_000);
    expect(log.sent).toEqual([1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 2]);
    recordEvent(log, 'sent', T0 + 11_000 + (SEND_LOG_SECONDS - 2) * 1_000);
    expect(log.sent).toHaveLength(SEND_LOG_SECONDS);
    expect(log.sent[0]).toBe(1);
    expect(log.sent[SEND_LOG_SECONDS - 2]).toBe(1); // T0 + 11 s
    expect(log.sent[SEND_LOG_SECONDS - 1]).toBe(0); // T0 + 10 s
    // the seconds T0 and T0 + 1 s fell out of the log
    expect(log.sent.reduce((a, b) => a + b, 0)).toBe(2);
  });

  it('forgets everything after a gap longer than the log', () => {
    const log = logWith([T0, T0 + 500, T0 + 1_000]);
    recordEvent(log, 'accepted', T0 + 1_000);
    recordEvent(log, 'sent', T0 + 10 * 60_000);
    expect(log.second).toBe(S0 + 600);
    expect(log.sent[0]).toBe(1);
    expect(log.sent.slice(1).every((n) => n === 0)).toBe(true);
    expect(log.accepted.every((n) => n === 0)).toBe(true);
    expect(countUpTo(log, 'sent', T0 + 10 * 60_000, SEND_LOG_SECONDS)).toBe(1);
    expect(countUpTo(log, 'accepted', T0 + 1_000, 2)).toBe(0);
  });

  it('drops an event older than the log and keeps one just inside it', () => {
    const log = logWith([T0 + 100_000]);
    recordEvent(log, 'sent', T0 + 100_000 - SEND_LOG_SECONDS * 1_000); // 63 s before the head's second
    expect(log.sent.reduce((a, b) => a + b, 0)).toBe(1);
    recordEvent(log, 'sent', T0 + 100_000 - (SEND_LOG_SECONDS - 1) * 1_000); // 62 s before: the oldest second kept
    expect(log.sent[SEND_LOG_SECONDS - 1]).toBe(1);
    expect(log.second).toBe(S0 + 100); // an old event never moves the head back
  });

  it('counts slots up to a second ahead and still places later answers for the current second', () => {
    const log = logWith([T0 + 200]);
    recordEvent(log, 'sent', T0 + 1_400); // a slot reserved into the next second
    recordEvent(log, 'accepted', T0 + 300); // an answer arriving now, after the head moved ahead
    recordEvent(log, 'sent', T0 + 900); // another slot in the current second
    expect(log.second).toBe(S0 + 1);
    expect(log.sent).toEqual([1, 2]);
    expect(log.accepted).toEqual([0, 1]);
    // a count up to now leaves the slot ahead out; one up to that slot includes it
    expect(countUpTo(log, 'sent', T0 + 500, 61)).toBe(2);
    expect(countUpTo(log, 'sent', T0 + 1_400, 61)).toBe(3);
    // seconds past the head count nothing
    expect(countUpTo(log, 'sent', T0 + 5_000, 3)).toBe(0);
    expect(countUpTo(log, 'sent', T0 + 3_000, 3)).toBe(1);
  });

  it('countUpTo spans whole seconds, inclusive of the one holding `at`', () => {
    const log = logWith([T0, T0 + 999, T0 + 1_000, T0 + 1_001, T0 + 2_000, T0 + 4_999]);
    expect(countUpTo(log, 'sent', T0 + 1_000, 1)).toBe(2); // the second T0+1 s, all of it
    expect(countUpTo(log, 'sent', T0 + 1_999, 1)).toBe(2);
    expect(countUpTo(log, 'sent', T0 + 1_000, 2)).toBe(4); // and the second before, all of it
    expect(countUpTo(log, 'sent', T0 + 2_000, 2)).toBe(3);
    expect(countUpTo(log, 'sent', T0 + 4_999, 5)).toBe(6);
    expect(countUpTo(log, 'sent', T0 + 4_999, 4)).toBe(4);
    expect(countUpTo(log, 'sent', T0 + 4_999, 100)).toBe(6); // beyond the log counts nothing more
    expect(countUpTo(log, 'sent', T0 + 4_999, 0)).toBe(0);
  });

  it('ratePerMinute averages the whole seconds before the one holding now, per minute', () => {
    const log = logWith([T0, T0 + 100, T0 + 1_100, T0 + 1_200, T0 + 1_300, T0 + 2_500]);
    // the seconds T0 and T0+1 s: 5 calls in 2 s is 150 a minute; the current second is left out
    expect(ratePerMinute(log, 'sent', T0 + 2_999, 2)).toBe(150);
    expect(ratePerMinute(log, 'sent', T0 + 2_000, 1)).toBe(180);
    expect(ratePerMinute(log, 'sent', T0 + 3_000, 3)).toBe(120);
    expect(ratePerMinute(log, 'accepted', T0 + 3_000, 3)).toBe(0);
  });
});
