/**
 * `Idempotency-Key` on POSTs: a repeat of a request returns the original response (status and
 * body), whatever happened since; the same key with a different request is a 409. The first
 * request holds a short "in progress" marker, so two concurrent repeats cannot both run.
 *
 * Keys are scoped by endpoint and kept 24 hours. Responses with a 5xx are not kept: the client
 * should be able to retry a request that failed on our side.
 */
import { createHash } from 'node:crypto';
import { AppError, apiIdempotencyKey } from '@zimage/shared';
import type { Redis } from 'ioredis';
import { errorBody } from './api-error.js';

const KEEP_SECONDS = 24 * 3600;
const IN_PROGRESS_SECONDS = 120;
const KEY_PATTERN = /^[\x21-\x7e]{1,255}$/;

export interface StoredResponse {
  status: number;
  body: unknown;
}

export interface Idempotency {
  /** Runs `handler` once per key; repeats get the stored response. */
  run(header: string | string[] | undefined, scope: string, fingerprint: string, handler: () => Promise<StoredResponse>): Promise<StoredResponse & { replayed: boolean }>;
}

export function fingerprintOf(...parts: (string | Buffer)[]): string {
  const hash = createHash('sha256');
  for (const part of parts) hash.update(part).update('\0');
  return hash.digest('hex');
}

export function createIdempotency(redis: Redis, prefix: string): Idempotency {
  return {
    async run(header, scope, fingerprint, handler) {
      if (header === undefined) return { ...(await handler()), replayed: false };
      const key = Array.isArray(header) ? header[0] : header;
      if (key === undefined || !KEY_PATTERN.test(key) || Array.isArray(header)) {
        throw new AppError('REQUEST_INVALID', 'Idempotency-Key: must be one header of 1–255 printable ASCII characters without spaces');
      }
      const redisKey = apiIdempotencyKey(prefix, fingerprintOf(scope, key));
      const claimed = await redis.set(redisKey, JSON.stringify({ state: 'in-progress', fingerprint }), 'EX', IN_PROGRESS_SECONDS, 'NX');
      if (!claimed) {
        const raw = await redis.get(redisKey);
        const stored = raw ? (JSON.parse(raw) as { state: string; fingerprint: string; response?: StoredResponse }) : undefined;
        if (!stored) return this.run(header, scope, fingerprint, handler); // expired in between
        if (stored.fingerprint !== fingerprint) {
          throw new AppError('IDEMPOTENCY_CONFLICT', 'Idempotency-Key was already used for a different request');
        }
        if (stored.state === 'in-progress' || !stored.response) {
          throw new AppError('IDEMPOTENCY_IN_PROGRESS', 'a request with this Idempotency-Key is still being processed; retry shortly');
        }
        return { ...stored.response, replayed: true };
      }
      let response: StoredResponse;
      try {
        response = await handler();
      } catch (error) {
        // A client error is the answer to this request, and is replayed like any other answer.
        if (error instanceof AppError && error.httpStatus < 500) {
          response = { status: error.httpStatus, body: errorBody(error) };
          await redis.set(redisKey, JSON.stringify({ state: 'done', fingerprint, response }), 'EX', KEEP_SECONDS);
        } else {
          await redis.del(redisKey);
        }
        throw error;
      }
      if (response.status < 500) await redis.set(redisKey, JSON.stringify({ state: 'done', fingerprint, response }), 'EX', KEEP_SECONDS);
      else await redis.del(redisKey);
      return { ...response, replayed: false };
    },
  };
}
