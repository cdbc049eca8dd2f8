/**
 * Redis names shared by producers and workers. BullMQ keys live under `{prefix}:{queue}:...`.
 * The prefix is configurable (`ZIMAGE_PREFIX`) so that several deployments can share one Redis.
 */
export const DEFAULT_PREFIX = 'zimage';
export const GENERATE_QUEUE = 'generate';
export const EVENTS_STREAM_SUFFIX = 'events';

export function eventsStreamKey(prefix: string): string {
  return `${prefix}:${EVENTS_STREAM_SUFFIX}`;
}

export function batchKey(prefix: string, batchId: string): string {
  return `${prefix}:batch:${batchId}`;
}

export function batchResultsKey(prefix: string, batchId: string): string {
  return `${prefix}:batch:${batchId}:results`;
}

/** "This job's terminal event was published" (one per job, whatever the outcome). */
export function emittedMarkerKey(prefix: string, jobId: string): string {
  return `${prefix}:emitted:${jobId}`;
}

export function pauseReasonKey(prefix: string): string {
  return `${prefix}:${GENERATE_QUEUE}:pause-reason`;
}
