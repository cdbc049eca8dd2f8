import type { Checkpoint, JobPayload, Logger } from '@zimage/shared';
import type { GenerationJob } from './generation-job.js';

/** What every step of one job's run needs, passed as one object instead of six parameters. */
export interface JobContext {
  job: GenerationJob;
  /** The BullMQ lock token (moveToDelayed needs it). */
  token: string | undefined;
  /** Aborted when the worker is told to cancel the job or to stop. */
  signal: AbortSignal | undefined;
  payload: JobPayload;
  log: Logger;
  /** Set the moment the upstream returns an image: from then on no failure may give it up. */
  paid?: Checkpoint;
}

/** A run's checkpoint, with defaults for a job that has none yet. */
export function checkpointOf(payload: JobPayload): Checkpoint {
  return payload.checkpoint ?? { regenerations: 0 };
}
