import { describe, expect, it } from 'vitest';
import { DEFAULT_RETRY_SCHEDULE, nextRetryDelay, parseRetrySchedule } from './retry-schedule.js';

describe('parseRetrySchedule', () => {
  it('reads the default (Svix) schedule: 8 attempts over about 27.6 h', () => {
    const schedule = parseRetrySchedule(DEFAULT_RETRY_SCHEDULE);
    expect(schedule).toEqual([5_000, 300_000, 1_800_000, 7_200_000, 18_000_000, 36_000_000, 36_000_000]);
    expect(schedule.reduce((a, b) => a + b, 0) / 3_600_000).toBeCloseTo(27.58, 1);
  });

  it('accepts ms, s, m and h and decimals', () => {
    expect(parseRetrySchedule('100ms, 1.5s,2m,1h')).toEqual([100, 1500, 120_000, 3_600_000]);
  });

  it.each([
    ['', 'at least one'],
    ['5', '"5" is not a delay'],
    ['5s,soon', '"soon" is not a delay'],
    ['49h', 'longer than 48h'],
    [Array.from({ length: 21 }, () => '1s').join(','), 'at most 20'],
  ])('rejects %j', (value, message) => {
    expect(() => parseRetrySchedule(value)).toThrow(message);
  });
});

describe('nextRetryDelay', () => {
  const schedule = [1_000, 10_000];

  it('applies ±20% jitter to the scheduled delay', () => {
    expect(nextRetryDelay(schedule, 1, undefined, () => 0)).toBe(800);
    expect(nextRetryDelay(schedule, 1, undefined, () => 0.5)).toBe(1_000);
    expect(nextRetryDelay(schedule, 2, undefined, () => 0.999999)).toBe(12_000);
  });

  it('is undefined once the schedule is exhausted (the delivery is dead-lettered)', () => {
    expect(nextRetryDelay(schedule, 3)).toBeUndefined();
  });

  it("waits longer when the receiver's Retry-After says so, never shorter", () => {
    expect(nextRetryDelay(schedule, 1, 30_000)).toBe(30_000);
    expect(nextRetryDelay(schedule, 1, 0, () => 0.5)).toBe(1_000);
    expect(nextRetryDelay(schedule, 3, 30_000)).toBeUndefined();
  });
});
