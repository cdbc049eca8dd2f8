export { createProducer, type BatchStatus, type EnqueuedJob, type ItemIssues, type JobState, type JobView, type PauseState, type Producer, type ProducerOptions } from './producer.js';
export { DEFAULT_BATCH_KEY_TEMPLATE, DEFAULT_KEY_TEMPLATE, DuplicateFinder, idempotentJobId, newBatchId, prepareJob, stableStringify, type PrepareContext, type PrepareOutcome, type PreparedJob } from './prepare-job.js';
export { detectFormat, locateRecord, readBatchRows, rowToRequest, type BatchFormat, type BatchRow, type RowMapping, type RowOutcome, type UnreadableRow } from './batch-file.js';
export { ingestBatchFile, type IngestOptions, type IngestReport, type RejectedRow } from './ingest-batch-file.js';
export { createSchedules, SCHEDULES_QUEUE, schedulesKey, type ApplyOutcome, type Schedules, type ScheduleView, type StoredSchedule } from './schedules/schedules.js';
export { startScheduleRunner, type ScheduleRunner, type ScheduleRunnerOptions } from './schedules/schedule-runner.js';
export { parseDuration, renderTickTime, scheduleSpecSchema, type ScheduleSpec } from './schedules/schedule-spec.js';
export { MAX_BATCH_ITEMS } from './batch-limits.js';
