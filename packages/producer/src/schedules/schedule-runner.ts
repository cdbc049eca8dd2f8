/**
 * Turns schedule ticks into batches. Runs in every `zimage worker` (BullMQ hands each tick to one
 * of them). A tick reads the schedule's current definition, gathers its items (inline prompts, the
 * CSV file, or the JSON feed), and ingests them exactly like `zimage batch`: all validated first,
 * one invalid item means no batch (the tick fails with every problem in the log).
 *
 * The batch id is derived from the schedule and the tick's time, so a tick that runs twice (a
 * retry after a crash) does not create a second batch.
 */
import { writeFile, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { AppError, checkWebhookUrl, createRedisConnection, isAppError, type Logger, type WebhookUrlPolicy } from '@zimage/shared';
import { UnrecoverableError, Worker, type Job } from 'bullmq';
import { ingestBatchFile } from '../ingest-batch-file.js';
import type { Producer } from '../producer.js';
import { MAX_BATCH_ITEMS } from '../batch-limits.js';
import { parseDuration, renderTickTime, type ScheduleSpec } from './schedule-spec.js';
import { SCHEDULES_QUEUE, schedulesKey, type StoredSchedule } from './schedules.js';

const FEED_TIMEOUT_MS = 15_000;
const MAX_FEED_BYTES = 20 * 1024 * 1024;

export interface ScheduleRunnerOptions {
  redisUrl: string;
  prefix: string;
  logger: Logger;
  producer: Producer;
  /** SSRF rules for feed URLs (the same as for webhooks). */
  policy: WebhookUrlPolicy;
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
      try {
        const report = await runTick(schedule, tickTime(job), options);
        logger.info({ scheduleId: schedule.id, batchId: report.batchId, items: report.enqueued }, `Schedule ${schedule.id}: batch ${report.batchId} with ${report.enqueued} jobs`);
        return report;
      } catch (error) {
        logger.error({ scheduleId: schedule.id, err: error }, `Schedule ${schedule.id}: tick failed: ${(error as Error).message}`);
        // Bad items will be as bad on a retry; a feed that did not answer may answer next time.
        if (isAppError(error) && error.retry === 'never') throw new UnrecoverableError(`${error.code}: ${error.message}`);
        throw error;
      }
    },
    { connection, prefix: options.prefix, concurrency: 1 },
  );
  worker.on('error', (error) => logger.error({ err: error }, 'Schedule runner error'));
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
  const { spec } = schedule;
  const batchId = `sched-${schedule.id}-${tickAt.getTime()}`;
  const existing = await options.producer.getBatch(batchId);
  if (existing) return { batchId, enqueued: 0, rows: existing.total, alreadyRan: true };
  const render = (text: string | undefined) => (text === undefined ? undefined : renderTickTime(text, tickAt, spec.tz));

  const dir = await mkdtemp(join(tmpdir(), 'zimage-tick-'));
  try {
    let path: string;
    let format: 'csv' | 'jsonl';
    if (spec.csv) {
      path = spec.csv;
      format = 'csv';
    } else {
      const items: unknown[] = spec.prompts ? spec.prompts.map((prompt) => ({ prompt: render(prompt) })) : await fetchFeed(spec.feed as string, options.policy);
      path = join(dir, 'tick.jsonl');
      format = 'jsonl';
      // The schedule's metadata under each item's own (non-objects are left for validation to report).
      const withMetadata = items.map((item) =>
        spec.metadata && item && typeof item === 'object' && !Array.isArray(item)
          ? { ...(item as Record<string, unknown>), metadata: { ...spec.metadata, ...((item as { metadata?: Record<string, string> }).metadata ?? {}) } }
          : item,
      );
      await writeFile(path, withMetadata.map((item) => JSON.stringify(item)).join('\n') + '\n');
    }
    const deadlineMs = spec.deadlineAfter ? parseDuration(spec.deadlineAfter) : undefined;
    const report = await ingestBatchFile(options.producer, {
      path,
      format,
      batchId,
      source: `schedule ${schedule.id} @ ${tickAt.toISOString()}`,
      promptTemplate: render(spec.promptTemplate),
      keyTemplate: render(spec.key),
      defaults: defaultsOf(spec, tickAt, deadlineMs),
      ...(spec.webhook ? { webhook: spec.webhook } : {}),
      maxRows: MAX_BATCH_ITEMS,
    });
    return { batchId: report.batchId, enqueued: report.enqueued, rows: report.rows, alreadyRan: false };
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

function defaultsOf(spec: ScheduleSpec, tickAt: Date, deadlineMs: number | undefined) {
  return {
    ...(spec.size ? { size: spec.size } : {}),
    ...(spec.promptExtend !== undefined ? { promptExtend: spec.promptExtend } : {}),
    ...(spec.priority !== undefined ? { priority: spec.priority } : {}),
    ...(deadlineMs !== undefined ? { deadline: new Date(tickAt.getTime() + deadlineMs).toISOString() } : {}),
    ...(spec.webhook ? { webhook: spec.webhook } : {}),
  };
}

/** A JSON feed: an array of items, or `{ items: [...] }`. Same SSRF rules as webhooks; no redirects. */
async function fetchFeed(url: string, policy: WebhookUrlPolicy): Promise<unknown[]> {
  await checkWebhookUrl(url, policy);
  let response: Response;
  try {
    response = await fetch(url, { redirect: 'error', signal: AbortSignal.timeout(FEED_TIMEOUT_MS), headers: { accept: 'application/json' } });
  } catch (error) {
    throw new AppError('NETWORK_ERROR', `feed ${new URL(url).host}: ${(error as Error).message}`, { cause: error });
  }
  if (!response.ok) throw new AppError('NETWORK_ERROR', `feed ${new URL(url).host} answered ${response.status}`);
  const length = Number(response.headers.get('content-length') ?? 0);
  if (length > MAX_FEED_BYTES) throw new AppError('PAYLOAD_TOO_LARGE', `feed ${new URL(url).host}: ${length} bytes (limit ${MAX_FEED_BYTES})`);
  const text = await response.text();
  if (text.length > MAX_FEED_BYTES) throw new AppError('PAYLOAD_TOO_LARGE', `feed ${new URL(url).host}: more than ${MAX_FEED_BYTES} bytes`);
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch {
    throw new AppError('BATCH_INVALID', `feed ${new URL(url).host}: not valid JSON`);
  }
  const items = Array.isArray(json) ? json : Array.isArray((json as { items?: unknown })?.items) ? (json as { items: unknown[] }).items : undefined;
  if (!items) throw new AppError('BATCH_INVALID', `feed ${new URL(url).host}: must be a JSON array of items, or { "items": [...] }`);
  return items;
}
