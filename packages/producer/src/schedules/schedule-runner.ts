/**
 * Turns schedule ticks into batches. Runs in every `zimage worker` (BullMQ hands each tick to one
 * of them). A tick reads the schedule's current definition, gathers its items (inline prompts, the
 * CSV file, or the JSON feed), and ingests them exactly like `zimage batch`: all validated first,
 * one invalid item means no batch (the tick fails with every problem in the log).
 *
 * The batch id is derived from the schedule and the tick's time, so a tick that runs twice (a
 * retry after a crash) does not create a second batch.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  createRedisConnection,
  DEFAULT_PUBLISH_OPTIONS,
  makeEvent,
  isAppError,
  publishEvent,
  storeWebhookTargets,
  webhookRefOf,
  type Logger,
  type WebhookUrlPolicy,
} from '@zimage/shared';
import { UnrecoverableError, Worker, type Job } from 'bullmq';
import { ingestBatchFile, type IngestOptions } from '../ingest-batch-file.js';
import type { Producer } from '../producer.js';
import { recordTick } from './schedule-runs.js';
import { prepareTickIngest, tickBatchId } from './tick-ingest.js';
import { SCHEDULES_QUEUE, schedulesKey, type StoredSchedule } from './schedules.js';

export interface ScheduleRunnerOptions {
  redisUrl: string;
  prefix: string;
  logger: Logger;
  producer: Producer;
  /** SSRF rules for feed URLs (the same as for webhooks). */
  policy: WebhookUrlPolicy;
  /** ZIMAGE_SCHEDULE_FILES_DIR: the only folder a tick reads a CSV from. */
  filesDir?: string | undefined;
  /** ZIMAGE_EVENTS_MAXLEN, for `schedule.failed` events. */
  eventsMaxLen?: number | undefined;
}

export interface ScheduleRunner {
  readonly worker: Worker;
  close(): Promise<void>;
}

export function startScheduleRunner(options: ScheduleRunnerOptions): ScheduleRunner {
  const connection = createRedisConnection(options.redisUrl, 'worker');
  const logger = options.logger.child({ component: 'schedules' });
  const worker = new Worker(
    SCHEDULES_QUEUE,
    async (job: Job<{ scheduleId: string }>) => {
      const raw = await connection.hget(schedulesKey(options.prefix), job.data.scheduleId);
      if (!raw) return { skipped: 'schedule removed' };
      const schedule = JSON.parse(raw) as StoredSchedule;
      const tickAt = tickTime(job);
      try {
        const report = await runTick(schedule, tickAt, options);
        logger.info({ scheduleId: schedule.id, batchId: report.batchId, items: report.enqueued }, `Schedule ${schedule.id}: batch ${report.batchId} with ${report.enqueued} jobs`);
        await recordTick(connection, options.prefix, schedule.id, { ok: true, batchId: report.batchId }, new Date());
        return report;
      } catch (error) {
        logger.error({ scheduleId: schedule.id, err: error }, `Schedule ${schedule.id}: tick failed: ${(error as Error).message}`);
        // Bad items will be as bad on a retry; a feed that did not answer may answer next time.
        const final = (isAppError(error) && error.retry === 'never') || job.attemptsMade + 1 >= (job.opts.attempts ?? 1);
        const code = isAppError(error) ? error.code : 'INTERNAL';
        const message = (error as Error).message;
        // Bookkeeping must not replace the tick's own error (a retry:'never' failure would retry).
        try {
          await recordTick(connection, options.prefix, schedule.id, { ok: false, code, message }, new Date());
          if (final) await publishTickFailed(schedule, tickAt, { code, message }, job.attemptsMade + 1);
        } catch (bookkeeping) {
          logger.error({ scheduleId: schedule.id, err: bookkeeping }, `Schedule ${schedule.id}: could not record the failed tick`);
        }
        if (isAppError(error) && error.retry === 'never') throw new UnrecoverableError(`${error.code}: ${error.message}`);
        throw error;
      }
    },
    { connection, prefix: options.prefix, concurrency: 1 },
  );
  worker.on('error', (error) => logger.error({ err: error }, 'Schedule runner error'));

  /** One `schedule.failed` per tick that made no batch, to the pipeline's own webhook too. */
  async function publishTickFailed(schedule: StoredSchedule, tickAt: Date, error: { code: string; message: string }, attempts: number): Promise<void> {
    const event = makeEvent('schedule.failed', `${schedule.id}@${tickAt.getTime()}`, { scheduleId: schedule.id, tickAt: tickAt.toISOString(), error, attempts });
    const webhook = schedule.spec.webhook;
    if (webhook) await storeWebhookTargets(connection, options.prefix, [webhook]);
    await publishEvent(connection, event, { webhook: webhook ? webhookRefOf(webhook) : undefined }, {
      prefix: options.prefix,
      maxLen: options.eventsMaxLen ?? DEFAULT_PUBLISH_OPTIONS.maxLen,
      markerTtlSeconds: DEFAULT_PUBLISH_OPTIONS.markerTtlSeconds,
    });
  }
  return {
    worker,
    async close() {
      await worker.close();
      await connection.quit().catch(() => {});
    },
  };
}

/** The time the tick was due: BullMQ names scheduler jobs `repeat:{id}:{millis}`. */
function tickTime(job: Job): Date {
  const millis = Number(String(job.id).split(':').at(-1));
  return new Date(Number.isFinite(millis) && millis > 0 ? millis : job.timestamp);
}

async function runTick(schedule: StoredSchedule, tickAt: Date, options: ScheduleRunnerOptions) {
  const batchId = tickBatchId(schedule.id, tickAt);
  const existing = await options.producer.getBatch(batchId);
  if (existing) return { batchId, enqueued: 0, rows: existing.total, alreadyRan: true };
  const dir = await mkdtemp(join(tmpdir(), 'zimage-tick-'));
  try {
    const ingest = (await prepareTickIngest(schedule, tickAt, dir, { filesDir: options.filesDir, policy: options.policy, fetchFeeds: true })) as IngestOptions;
    const report = await ingestBatchFile(options.producer, ingest);
    return { batchId: report.batchId, enqueued: report.enqueued, rows: report.rows, alreadyRan: false };
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}
