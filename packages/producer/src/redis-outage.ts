/**
 * How a long wait rides out Redis going away: a connection failure is retried every second (the
 * connection reconnects on its own) until Redis has been unreachable for `toleranceMs` or the
 * wait's own deadline comes, and then ends as REDIS_UNAVAILABLE, never as a raw ioredis error.
 * Any other failure is not ours to hide: it is thrown as it is.
 */
import { AppError, isRedisConnectionError, isSocketError } from '@zimage/shared';

/** Longest outage a wait or feed rides out before it gives up: a Redis restart or failover fits. */
export const REDIS_OUTAGE_TOLERANCE_MS = 30_000;
const RETRY_MS = 1_000;

export class RedisOutage {
  #since: number | undefined;

  constructor(
    private readonly doing: string,
    private readonly toleranceMs = REDIS_OUTAGE_TOLERANCE_MS,
  ) {}

  /** REDIS_UNAVAILABLE for this outage (`since`: when it began, if no failure was seen yet). */
  unreachable(why: string, cause?: unknown, since = Date.now()): AppError {
    const seconds = Math.round((Date.now() - (this.#since ?? since)) / 1000);
    return new AppError('REDIS_UNAVAILABLE', `Redis has been unreachable for ${seconds} s while ${this.doing}: ${why}`, cause === undefined ? {} : { cause });
  }

  /** Redis answered: an outage, if there was one, is over. */
  clear(): void {
    this.#since = undefined;
  }

  /** Rethrows `error` unless it is a lost connection still within the tolerance (and before `deadline`); then waits a second. */
  async tolerate(error: unknown, deadline = Number.POSITIVE_INFINITY, signal?: AbortSignal): Promise<void> {
    // An abort closes the reader mid-read: that is the abort, not an outage.
    if (signal?.aborted) throw signal.reason;
    // Only Redis calls come here, so a bare socket error is Redis's too.
    if (!isRedisConnectionError(error) && !isSocketError(error)) throw error;
    const now = Date.now();
    this.#since ??= now;
    if (now - this.#since >= this.toleranceMs || now + RETRY_MS > deadline) throw this.unreachable((error as Error).message, error);
    await new Promise<void>((resolve) => {
      const timer = setTimeout(done, RETRY_MS);
      function done() {
        clearTimeout(timer);
        signal?.removeEventListener('abort', done);
        resolve();
      }
      signal?.addEventListener('abort', done, { once: true });
    });
  }
}
