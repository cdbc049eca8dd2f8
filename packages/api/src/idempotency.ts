/**
 * `Idempotency-Key` on POSTs: a repeat of a request returns the original response (status and
 * body), whatever happened since; the same key with a different request is a 409. The first
 * request holds an "in progress" marker, so two concurrent repeats cannot both run.
 *
 * The marker is short-lived so that a request whose process died does not block its key for long,
 * and a heartbeat re-extends it while the handler runs, so a slow one (a 100,000-row batch upload)
 * keeps it however long it takes. The marker carries a random token and is only extended or
 * deleted while it is still ours: if it was lost (Redis restarted, a stall longer than its
 * lifetime) and a repeat claimed the key meanwhile, we leave the repeat's marker alone. Handlers
 * that create something must not rely on the marker alone (see the derived batch id in
 * routes-batches.ts).
 *
 * Keys are scoped by endpoint and kept 24 hours. Responses with a 5xx are not kept: the client
 * should be able to retry a request that failed on our side.
 */
import { createHash, randomUUID } from 'node:crypto';
import { AppError, apiIdempotencyKey } from '@zimage/shared';
import type { Redis } from 'ioredis';
import { errorBody } from './api-error.js';

const KEEP_SECONDS = 24 * 3600;
const IN_PROGRESS_MS = 120_000;
const KEY_PATTERN = /^[\x21-\x7e]{1,255}$/;

/** Extends the marker only if it still holds our value (a repeat may have claimed it since). */
const EXTEND_IF_OURS = "if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('pexpire', KEYS[1], ARGV[2]) end return 0";
const DELETE_IF_OURS = "if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('del', KEYS[1]) end return 0";

export interface StoredResponse {
  status: number;
  body: unknown;
}

export interface IdempotencyOptions {
  /** Lifetime of the "in progress" marker; the heartbeat renews it every third of that. @defaultValue 120 s */
  inProgressMs?: number;
}

export interface Idempotency {
  /**
   * Runs `handler` once per key; repeats get the stored response. The handler is told the
   * (validated) key, so that what it creates can be named after it.
   */
  run(
    header: string | string[] | undefined,
    scope: string,
    fingerprint: string,
    handler: (context: { key: string | undefined }) => Promise<StoredResponse>,
  ): Promise<StoredResponse & { replayed: boolean }>;
}

export function fingerprintOf(...parts: (string | Buffer)[]): string {
  const hash = createHash('sha256');
  for (const part of parts) hash.update(part).update('\0');
  return hash.digest('hex');
}

export function createIdempotency(redis: Redis, prefix: string, options: IdempotencyOptions = {}): Idempotency {
  const inProgressMs = options.inProgressMs ?? IN_PROGRESS_MS;

  /** Re-extends the marker every third of its lifetime until stopped or until it is no longer ours. */
  function heartbeat(redisKey: string, marker: string): () => void {
    let stopped = false;
    let timer: NodeJS.Timeout | undefined;
    const beat = async () => {
      try {
        const extended = await redis.eval(EXTEND_IF_OURS, 1, redisKey, marker, String(inProgressMs));
        if (extended !== 1) stopped = true;
      } catch {
        // Redis unreachable for a moment: try again at the next beat; the marker may outlive it.
      }
      if (!stopped) schedule();
    };
    const schedule = () => {
      timer = setTimeout(() => void beat(), Math.max(1, Math.floor(inProgressMs / 3)));
      timer.unref();
    };
    schedule();
    return () => {
      stopped = true;
      clearTimeout(timer);
    };
  }

  return {
    async run(header, scope, fingerprint, handler) {
      if (header === undefined) return { ...(await handler({ key: undefined })), replayed: false };
      const key = Array.isArray(header) ? header[0] : header;
      if (key === undefined || !KEY_PATTERN.test(key) || Array.isArray(header)) {
        throw new AppError('REQUEST_INVALID', 'Idempotency-Key: must be one header of 1–255 printable ASCII characters without spaces');
      }
      const redisKey = apiIdempotencyKey(prefix, fingerprintOf(scope, key));
      const marker = JSON.stringify({ state: 'in-progress', fingerprint, token: randomUUID() });
      const claimed = await redis.set(redisKey, marker, 'PX', inProgressMs, 'NX');
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
      const stopHeartbeat = heartbeat(redisKey, marker);
      let response: StoredResponse;
      try {
        response = await handler({ key });
      } catch (error) {
        // A client error is the answer to this request, and is replayed like any other answer.
        if (error instanceof AppError && error.httpStatus < 500) {
          response = { status: error.httpStatus, body: errorBody(error) };
          await redis.set(redisKey, JSON.stringify({ state: 'done', fingerprint, response }), 'EX', KEEP_SECONDS);
        } else {
          await redis.eval(DELETE_IF_OURS, 1, redisKey, marker);
        }
        throw error;
      } finally {
        stopHeartbeat();
      }
      if (response.status < 500) await redis.set(redisKey, JSON.stringify({ state: 'done', fingerprint, response }), 'EX', KEEP_SECONDS);
      else await redis.eval(DELETE_IF_OURS, 1, redisKey, marker);
      return { ...response, replayed: false };
    },
  };
}
