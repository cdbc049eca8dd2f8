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

export function isRedisConnectionError(error: unknown): boolean {
  if (isAppError(error)) return error.code === 'REDIS_UNAVAILABLE';
  if (!(error instanceof Error)) return false;
  const code = (error as NodeJS.ErrnoException).code;
  if (code !== undefined && SOCKET_CODES.has(code)) return true;
  return error.name === 'MaxRetriesPerRequestError' || MESSAGES.some((pattern) => pattern.test(error.message));
}

/** REDIS_UNAVAILABLE for a connection failure (the original kept as `cause`); anything else as it is. */
export function asRedisUnavailable(error: unknown, doing: string): unknown {
  if (isAppError(error) || !isRedisConnectionError(error)) return error;
  return new AppError('REDIS_UNAVAILABLE', `Redis became unreachable while ${doing}: ${(error as Error).message}`, { cause: error });
}
