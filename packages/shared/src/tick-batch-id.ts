/** A scheduled pipeline's batches are named after it: the producer names them, a worker reads the pipeline back (budgets per pipeline). */

/** A tick's batch id: derived from the schedule and the tick's time, so a tick run twice makes one batch. */
export function tickBatchId(scheduleId: string, tickAt: Date): string {
  return `sched-${scheduleId}-${tickAt.getTime()}`;
}

/** The pipeline (schedule id) a tick's batch belongs to, or undefined for a batch no schedule made. */
export function pipelineOfBatch(batchId: string | undefined): string | undefined {
  return batchId === undefined ? undefined : /^sched-([a-z0-9][a-z0-9_-]{0,31})-\d+$/.exec(batchId)?.[1];
}
