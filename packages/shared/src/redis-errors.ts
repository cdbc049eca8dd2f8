/**
 * Telling "Redis is not reachable" apart from every other failure, and saying it in our words.
 * ioredis reports a lost or refused connection in several shapes (a closed stream, the offline
 * queue being off, the per-request retry limit, a socket errno); each is REDIS_UNAVAILABLE to the
 * people at the edges (HTTP 503, CLI exit 3), never an INTERNAL "bug".
 */
import { AppError, isAppError } from './errors.js';

const SOCKET_CODES = new Set(['ECONNREFUSED', 'ECONNRESET', 'ETIMEDOUT', 'EPIPE', 'EHOSTUNREACH', 'ENETUNREACH', 'ENOTFOUND', 'EAI_AGAIN', 'ECONNABORTED']);

const MESSAGES = [
  /^Connection is closed\.?$/,
  /Stream isn't writeable and enableOfflineQueue options is false/,
  /^Reached the max retries per request limit/,
  /^None of startup nodes is available/,
  /^Failed to refresh slots cache/,
];

/**
 * Whether ioredis says its connection is gone. Only its own shapes: a bare socket errno
 * (ECONNREFUSED, …) could as well come from S3 or a webhook receiver, so it is not read as Redis
 * here (see `isSocketError`, for callers that know the failed call was a Redis one).
 */
export function isRedisConnectionError(error: unknown): boolean {
  if (isAppError(error)) return error.code === 'REDIS_UNAVAILABLE';
  if (!(error instanceof Error)) return false;
  return error.name === 'MaxRetriesPerRequestError' || MESSAGES.some((pattern) => pattern.test(error.message));
}

/** A failed socket (refused, reset, timed out, no route, no such host). */
export function isSocketError(error: unknown): boolean {
  const code = error instanceof Error ? (error as NodeJS.ErrnoException).code : undefined;
  return code !== undefined && SOCKET_CODES.has(code);
}

/** REDIS_UNAVAILABLE for a connection failure (the original kept as `cause`); anything else as it is. */
export function asRedisUnavailable(error: unknown, doing: string): unknown {
  if (isAppError(error) || !isRedisConnectionError(error)) return error;
  return new AppError('REDIS_UNAVAILABLE', `Redis became unreachable while ${doing}: ${(error as Error).message}`, { cause: error });
}
