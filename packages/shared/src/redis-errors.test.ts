import { describe, expect, it } from 'vitest';
import { AppError } from './errors.js';
import { asRedisUnavailable, isRedisConnectionError, isSocketError } from './redis-errors.js';

const errno = (code: string) => Object.assign(new Error(`connect ${code} 127.0.0.1:6379`), { code });

describe('telling a lost Redis connection apart', () => {
  it("reads ioredis' own shapes as Redis being gone", () => {
    for (const message of ['Connection is closed.', "Stream isn't writeable and enableOfflineQueue options is false", 'Reached the max retries per request limit (which is 1).']) {
      expect(isRedisConnectionError(new Error(message)), message).toBe(true);
    }
    expect(isRedisConnectionError(new AppError('REDIS_UNAVAILABLE', 'x'))).toBe(true);
  });

  it('does not blame Redis for a bare socket error, which may be S3 or a webhook receiver', () => {
    expect(isRedisConnectionError(errno('ECONNREFUSED'))).toBe(false);
    expect(isSocketError(errno('ECONNREFUSED'))).toBe(true);
    const refused = errno('ECONNREFUSED');
    expect(asRedisUnavailable(refused, 'x')).toBe(refused);
  });

  it('turns a lost connection into REDIS_UNAVAILABLE, keeping the cause, and leaves other errors alone', () => {
    const lost = new Error('Connection is closed.');
    const mapped = asRedisUnavailable(lost, 'reading events') as AppError;
    expect(mapped.code).toBe('REDIS_UNAVAILABLE');
    expect(mapped.message).toBe('Redis became unreachable while reading events: Connection is closed.');
    expect(mapped.cause).toBe(lost);
    const other = new TypeError('boom');
    expect(asRedisUnavailable(other, 'x')).toBe(other);
  });
});
