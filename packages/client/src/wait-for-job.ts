/**
 * Polls `GET /v1/jobs/{id}` until the job has succeeded, failed or been cancelled. Over HTTP there
 * is no event tail to wake on (the library's `waitForJob` has one), so it asks every
 * `intervalMs`; each answer is one cheap read of Redis on the server.
 */
import type { ZimageClient } from './create-client.js';
import type { components } from './schema.js';
import { ZimageApiError } from './zimage-api-error.js';

export type Job = components['schemas']['Job'];

export interface WaitForJobOptions {
  /** @defaultValue 600000 (10 minutes) */
  timeoutMs?: number;
  /** @defaultValue 1000 */
  intervalMs?: number;
  signal?: AbortSignal;
}

const FINISHED = new Set<Job['state']>(['completed', 'failed', 'cancelled']);

/** Resolves with the finished job (look at `state`); rejects with ZimageApiError (WAIT_TIMEOUT, JOB_NOT_FOUND, …) or the signal's reason. */
export async function waitForJob(client: ZimageClient, jobId: string, options: WaitForJobOptions = {}): Promise<Job> {
  const timeoutMs = options.timeoutMs ?? 600_000;
  const intervalMs = options.intervalMs ?? 1000;
  if (!Number.isFinite(timeoutMs) || timeoutMs <= 0) throw new TypeError('timeoutMs: must be a positive number of milliseconds');
  if (!Number.isFinite(intervalMs) || intervalMs <= 0) throw new TypeError('intervalMs: must be a positive number of milliseconds');
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    options.signal?.throwIfAborted();
    const { data, error, response } = await client.GET('/v1/jobs/{id}', { params: { path: { id: jobId } }, ...(options.signal ? { signal: options.signal } : {}) });
    if (error !== undefined || data === undefined) throw new ZimageApiError(response.status, error);
    if (FINISHED.has(data.state)) return data;
    const left = deadline - Date.now();
    if (left <= 0) throw new ZimageApiError(504, { error: { code: 'WAIT_TIMEOUT', message: `job ${jobId} did not finish within ${timeoutMs} ms (state ${data.state})` } });
    await sleep(Math.min(intervalMs, left), options.signal);
  }
}

function sleep(ms: number, signal: AbortSignal | undefined): Promise<void> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      signal?.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    const onAbort = () => {
      clearTimeout(timer);
      reject(signal?.reason);
    };
    signal?.addEventListener('abort', onAbort, { once: true });
  });
}
