import { describe, expect, it } from 'vitest';
import { parseLimiterFlags } from './emulator.js';

describe('zimage emulator limiter flags', () => {
  it('passes nothing when no limiter flag is given', () => {
    expect(parseLimiterFlags({})).toEqual({});
  });

  it('parses every limiter flag', () => {
    expect(
      parseLimiterFlags({ limiter: 'drift', windowMs: '1500', bucketSize: '20', maxInFlight: '3', drift: '0:600, 60000:360,120000:600.5' }),
    ).toEqual({
      model: 'drift',
      windowMs: 1500,
      bucketSize: 20,
      maxInFlight: 3,
      drift: [
        { atMs: 0, rpm: 600 },
        { atMs: 60_000, rpm: 360 },
        { atMs: 120_000, rpm: 600.5 },
      ],
    });
  });

  it.each([
    [{ limiter: 'leaky' }, '--limiter must be one of per-second, fixed-window, sliding-log, token-bucket, concurrency, drift'],
    [{ windowMs: '0' }, '--window-ms must be at least 1'],
    [{ windowMs: 'soon' }, '--window-ms must be a whole number'],
    [{ bucketSize: '0' }, '--bucket-size must be at least 1'],
    [{ maxInFlight: '2.5' }, '--max-in-flight must be a whole number'],
    [{ maxInFlight: '0' }, '--max-in-flight must be at least 1'],
    [{ drift: '0-600' }, '--drift steps must be whole ms, a colon, and a positive rpm'],
    [{ drift: '0:0' }, '--drift rpm must be greater than 0'],
    [{ drift: '1000:600' }, '--drift must start with a step at 0 ms'],
    [{ drift: '0:600,5000:300,5000:200' }, '--drift atMs must be strictly increasing'],
  ])('rejects %o, naming the flag and the rule', (flags, message) => {
    expect(() => parseLimiterFlags(flags)).toThrow(message);
  });
});
