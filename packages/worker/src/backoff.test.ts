import { describe, expect, it } from 'vitest';
import { backoffDelay, RETRY_BACKOFF, type BackoffPolicy } from './backoff.js';

const THROTTLE_BACKOFF: BackoffPolicy = { baseMs: 1_000, maxMs: 30_000, jitter: 0.5 };

const POLICY: BackoffPolicy = { baseMs: 1_000, maxMs: 60_000, jitter: 0.5 };
const low = () => 0;
const high = () => 1;

describe('backoffDelay', () => {
  it.each([
    [1, 500, 1_000],
    [2, 1_000, 2_000],
    [3, 2_000, 4_000],
    [4, 4_000, 8_000],
    [6, 16_000, 32_000],
    [7, 30_000, 60_000], // 64 s capped at 60 s
    [20, 30_000, 60_000],
  ])('after %i failures waits between %i and %i ms (50%–100% of base·2^(n−1), capped)', (failures, min, max) => {
    expect(backoffDelay(failures, POLICY, undefined, low)).toBe(min);
    expect(backoffDelay(failures, POLICY, undefined, high)).toBe(max);
    for (let i = 0; i < 50; i++) {
      const delay = backoffDelay(failures, POLICY);
      expect(delay).toBeGreaterThanOrEqual(min);
      expect(delay).toBeLessThanOrEqual(max);
    }
  });

  it('interpolates linearly inside the jitter range', () => {
    expect(backoffDelay(3, POLICY, undefined, () => 0.5)).toBe(3_000);
  });

  it('treats 0 or negative failures like the first', () => {
    expect(backoffDelay(0, POLICY, undefined, high)).toBe(1_000);
    expect(backoffDelay(-3, POLICY, undefined, high)).toBe(1_000);
  });

  it.each([31, 100, 1_000, Number.MAX_SAFE_INTEGER])('stays at the cap without overflowing after %i failures', (failures) => {
    const delay = backoffDelay(failures, POLICY, undefined, high);
    expect(Number.isFinite(delay)).toBe(true);
    expect(delay).toBe(POLICY.maxMs);
    expect(backoffDelay(failures, POLICY, undefined, low)).toBe(POLICY.maxMs / 2);
  });

  it('uses no randomness with jitter 0 and all of it with jitter 1', () => {
    expect(backoffDelay(3, { ...POLICY, jitter: 0 }, undefined, low)).toBe(4_000);
    expect(backoffDelay(3, { ...POLICY, jitter: 1 }, undefined, low)).toBe(0);
    expect(backoffDelay(3, { ...POLICY, jitter: 1 }, undefined, high)).toBe(4_000);
  });

  it('uses Retry-After instead of the exponential delay, plus at most 10%', () => {
    expect(backoffDelay(1, POLICY, 7_000, low)).toBe(7_000);
    expect(backoffDelay(1, POLICY, 7_000, high)).toBe(7_700);
    expect(backoffDelay(10, POLICY, 2_000, low)).toBe(2_000); // wins over a longer exponential delay too
  });

  it('honours a Retry-After above the cap', () => {
    expect(backoffDelay(1, THROTTLE_BACKOFF, 120_000, low)).toBe(120_000);
  });

  it('honours Retry-After 0', () => {
    expect(backoffDelay(5, POLICY, 0, high)).toBe(0);
  });

  it('ignores a negative Retry-After', () => {
    expect(backoffDelay(2, POLICY, -1, high)).toBe(2_000);
  });

  it('returns whole milliseconds', () => {
    expect(Number.isInteger(backoffDelay(3, POLICY, undefined, () => 0.3333))).toBe(true);
    expect(Number.isInteger(backoffDelay(3, POLICY, 1_234, () => 0.3333))).toBe(true);
  });
});

describe('the configured policies', () => {
  it('retries transient errors from 1 s up to a minute', () => {
    expect(backoffDelay(1, RETRY_BACKOFF, undefined, high)).toBe(1_000);
    expect(backoffDelay(50, RETRY_BACKOFF, undefined, high)).toBe(60_000);
  });

  it('backs off throttling from 1 s up to 30 s', () => {
    expect(backoffDelay(1, THROTTLE_BACKOFF, undefined, high)).toBe(1_000);
    expect(backoffDelay(50, THROTTLE_BACKOFF, undefined, high)).toBe(30_000);
  });
});
