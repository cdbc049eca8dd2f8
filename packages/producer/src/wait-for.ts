/**
 * Waiting for a job or a batch to finish. The answer always comes from the read model (`readJob`,
 * `readBatch`), never from an event alone: events only say when to look again. So a missed event
 * costs at most one re-check interval, and a wait started after the end returns at once.
 *
 * The worker publishes a job's event just before BullMQ marks the job completed, so a look right
 * after the event can still see it active: after an event, looks repeat quickly (25 ms, doubling)
 * until the state has caught up.
 */
import { AppError, isAppError, type ZimageEvent } from '@zimage/shared';
import type { EventTail } from './event-tail.js';
import type { ProducerContext } from './producer-context.js';
import { RedisOutage } from './redis-outage.js';
import { readBatch, readJob, TERMINAL_JOB_STATES, type BatchStatus, type JobView } from './read-models.js';

export interface WaitOptions {
  /**
   * Gives up with WAIT_TIMEOUT after this long. `Infinity` waits until the work finishes or
   * `signal` aborts. @defaultValue 600000 (10 minutes)
   */
  timeoutMs?: number;
  /** Aborts the wait (rejects with the signal's reason); the job itself is not touched. */
  signal?: AbortSignal;
}

export const DEFAULT_WAIT_TIMEOUT_MS = 600_000;
/** Without an event, the state is looked at this often anyway (an event can be trimmed away or missed across a Redis failover). */
const RECHECK_MS = 5_000;
const FIRST_CATCH_UP_MS = 25;
const MAX_CATCH_UP_MS = 1_000;

/** Resolves with the job once it is completed, failed or cancelled. JOB_NOT_FOUND when there is no such job. */
export function waitForJob(context: ProducerContext, tail: EventTail, jobId: string, options: WaitOptions = {}): Promise<JobView> {
  return waitUntil(tail, options, {
    what: `job ${jobId}`,
    concerns: (event) => event.type.startsWith('job.') && 'jobId' in event.data && event.data.jobId === jobId,
    look: async () => {
      const job = await readJob(context, jobId);
      if (!job) throw new AppError('JOB_NOT_FOUND', `no job ${jobId}`);
      return TERMINAL_JOB_STATES.has(job.state) ? job : undefined;
    },
    connected: () => context.connection.status === 'ready',
  });
}

/** Resolves with the batch's counts once every job of it has finished. JOB_NOT_FOUND when there is no such batch. */
export function waitForBatch(context: ProducerContext, tail: EventTail, batchId: string, options: WaitOptions = {}): Promise<BatchStatus> {
  return waitUntil(tail, options, {
    what: `batch ${batchId}`,
    concerns: (event) => event.type === 'batch.completed' && event.data.batchId === batchId,
    look: async () => {
      const batch = await readBatch(context, batchId);
      if (!batch) throw new AppError('JOB_NOT_FOUND', `no batch ${batchId}`);
      return batch.completedAt ? batch : undefined;
    },
    connected: () => context.connection.status === 'ready',
  });
}

interface Awaited<T> {
  what: string;
  /** Whether an event may mean the awaited state is reached. */
  concerns: (event: ZimageEvent) => boolean;
  /** The finished value, or undefined while not finished. */
  look: () => Promise<T | undefined>;
  /** Whether the connection the look uses is up (a read cut by the deadline is then a timeout, else an outage). */
  connected: () => boolean;
}

async function waitUntil<T>(tail: EventTail, options: WaitOptions, awaited: Awaited<T>): Promise<T> {
  const { signal } = options;
  const timeoutMs = options.timeoutMs ?? DEFAULT_WAIT_TIMEOUT_MS;
  if (!(timeoutMs >= 0)) throw new AppError('REQUEST_INVALID', `timeoutMs: must be a number of milliseconds ≥ 0 (Infinity to wait without limit), got ${String(options.timeoutMs)}`);
  signal?.throwIfAborted();
  const started = Date.now();
  const deadline = started + timeoutMs;
  const alarm = new Alarm();
  let eventSeen = false;
  // Subscribed before the first look: an event published between the look and the subscription
  // would otherwise be missed.
  const outage = new RedisOutage(`waiting for ${awaited.what}`);
  const listener = (event: ZimageEvent) => {
    if (!awaited.concerns(event)) return;
    eventSeen = true;
    alarm.ring();
  };
  let unsubscribe: () => void;
  for (;;) {
    signal?.throwIfAborted();
    try {
      unsubscribe = await answeredBy(tail.subscribe(listener), deadline, `starting to wait for ${awaited.what}`, signal);
      break;
    } catch (error) {
      if (signal?.aborted) throw error;
      if (isAppError(error) && error.code === 'WAIT_TIMEOUT') throw awaited.connected() ? error : outage.unreachable('no connection by the deadline', undefined, started);
      await outage.tolerate(error, deadline, signal);
    }
  }
  const onAbort = () => alarm.ring();
  signal?.addEventListener('abort', onAbort, { once: true });
  try {
    let catchUpMs = FIRST_CATCH_UP_MS;
    for (;;) {
      signal?.throwIfAborted();
      let done: T | undefined;
      try {
        done = await answeredBy(awaited.look(), deadline, `waiting for ${awaited.what}`, signal);
        outage.clear();
      } catch (error) {
        // The deadline passed with no answer, or the wait was aborted. No answer on a connection
        // that is down is the outage (REDIS_UNAVAILABLE); on one that is up, a frozen Redis: a timeout.
        if (signal?.aborted) throw error;
        if (isAppError(error) && error.code === 'WAIT_TIMEOUT') throw awaited.connected() ? error : outage.unreachable('no connection by the deadline', undefined, started);
        // A Redis restart or failover is ridden out (up to 30 s, and never past the deadline).
        await outage.tolerate(error, deadline, signal);
        continue;
      }
      if (done !== undefined) return done;
      signal?.throwIfAborted();
      const remaining = deadline - Date.now();
      if (remaining <= 0) {
        throw new AppError('WAIT_TIMEOUT', `${awaited.what} has not finished after ${formatMs(timeoutMs)}; it is still queued or running`);
      }
      let delay = RECHECK_MS;
      if (eventSeen) {
        delay = catchUpMs;
        catchUpMs = Math.min(catchUpMs * 2, MAX_CATCH_UP_MS);
      }
      await alarm.sleep(Math.min(delay, remaining));
    }
  } finally {
    unsubscribe();
    signal?.removeEventListener('abort', onAbort);
  }
}

/**
 * A Redis read raced against the wait's deadline and its signal: a connection that neither answers
 * nor fails (half-open, a frozen server) cannot hold a wait past its `timeoutMs`.
 */
async function answeredBy<T>(read: Promise<T>, deadline: number, doing: string, signal: AbortSignal | undefined): Promise<T> {
  if (!Number.isFinite(deadline) && !signal) return read;
  read.catch(() => {}); // settles later, if ever, unobserved
  let timer: NodeJS.Timeout | undefined;
  let onAbort: (() => void) | undefined;
  const cut = new Promise<never>((_, reject) => {
    if (Number.isFinite(deadline)) {
      // The wait's time ran out while Redis had not answered: a timeout, saying why.
      timer = setTimeout(() => reject(new AppError('WAIT_TIMEOUT', `timed out ${doing}: Redis had not answered by the deadline`)), Math.max(0, deadline - Date.now()));
    }
    onAbort = () => reject(signal?.reason);
    signal?.addEventListener('abort', onAbort, { once: true });
  });
  try {
    return await Promise.race([read, cut]);
  } finally {
    clearTimeout(timer);
    if (onAbort) signal?.removeEventListener('abort', onAbort);
  }
}

/** A sleep that an event (or an abort) cuts short. */
class Alarm {
  #wake: (() => void) | undefined;

  ring(): void {
    this.#wake?.();
  }

  sleep(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const timer = setTimeout(done, ms);
      const self = this;
      function done() {
        clearTimeout(timer);
        self.#wake = undefined;
        resolve();
      }
      this.#wake = done;
    });
  }
}

function formatMs(ms: number): string {
  return ms >= 1_000 ? `${Math.round(ms / 100) / 10} s` : `${ms} ms`;
}
