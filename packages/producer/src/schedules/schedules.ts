/**
 * Scheduled pipelines on BullMQ job schedulers: each schedule is a scheduler in the `schedules`
 * queue whose ticks the schedule runner turns into ordinary batches.
 *
 * The definitions live in a Redis hash beside the schedulers (with where they came from: a
 * pipelines file or the API), so that applying a file can tell what changed: an unchanged
 * pipeline is not touched (its next run stays), a changed one is upserted, and a file-managed
 * pipeline missing from the file is removed. Schedules created through the API are left alone by
 * `apply`.
 */
import { createHash } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { dirname, resolve } from 'node:path';
import { AppError, toFieldIssues, urlHost, type FieldIssue, type WebhookSpec } from '@zimage/shared';
import { CronExpressionParser } from 'cron-parser';
import { Queue } from 'bullmq';
import type { Redis } from 'ioredis';
import { parse as parseYaml } from 'yaml';
import { z } from 'zod';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ingestBatchFile } from '../ingest-batch-file.js';
import type { Producer } from '../producer.js';
import { confineSchedulePath } from './schedule-file.js';
import { prepareTickIngest } from './tick-ingest.js';
import { parseDuration, SCHEDULE_ID, scheduleSpecSchema, type ScheduleSpec } from './schedule-spec.js';
import { forgetScheduleRuns, readScheduleRuns, type ScheduleRun } from './schedule-runs.js';

export const SCHEDULES_QUEUE = 'schedules';
export const TICK_JOB = 'tick';

export function schedulesKey(prefix: string): string {
  return `${prefix}:schedules`;
}

export interface StoredSchedule {
  id: string;
  spec: ScheduleSpec;
  source: 'file' | 'api';
  hash: string;
  updatedAt: string;
}

/**
 * A pipeline as `GET /v1/schedules` and `zimage schedule list` show it: its webhook by host and
 * filter only (the URL may carry a token; it stays in the stored definition).
 */
export interface ScheduleView extends Omit<StoredSchedule, 'spec'>, ScheduleRun {
  spec: Omit<ScheduleSpec, 'webhook'> & { webhook?: WebhookRefView };
  nextRunAt: string | undefined;
}

export interface WebhookRefView {
  host: string;
  events?: WebhookSpec['events'];
}

export interface ApplyOutcome {
  created: string[];
  updated: string[];
  unchanged: string[];
  /** File-managed pipelines missing from the file, removed (with `prune`). */
  removed: string[];
  /** File-managed pipelines missing from the file, kept (without `prune`). */
  kept: string[];
}

export interface ApplyOptions {
  /** Work out and return the plan; change nothing. */
  dryRun?: boolean;
  /** Remove file-managed pipelines missing from the file (otherwise they are kept and listed). */
  prune?: boolean;
}

const fileSchema = z.union([
  z.strictObject({ pipelines: z.array(z.looseObject({ id: z.string() })) }),
  z.array(z.looseObject({ id: z.string() })),
]);

export interface Schedules {
  readonly queue: Queue;
  put(id: string, spec: unknown, source?: 'file' | 'api'): Promise<{ schedule: StoredSchedule; change: 'created' | 'updated' | 'unchanged' }>;
  get(id: string): Promise<ScheduleView | undefined>;
  list(): Promise<ScheduleView[]>;
  remove(id: string): Promise<boolean>;
  /** Applies a pipelines file (YAML or JSON): everything validated first, nothing changed on error. */
  applyFile(path: string, options?: ApplyOptions): Promise<ApplyOutcome>;
  close(): Promise<void>;
}

export interface SchedulesOptions {
  /** ZIMAGE_SCHEDULE_FILES_DIR: the only folder a schedule's `csv` may name a file in; unset, `csv` is refused. */
  filesDir?: string | undefined;
  /**
   * With a producer, a schedule is also validated as its tick would be (a dry ingest of its first
   * tick: every inline job through the job schema, the templates against the CSV's columns, the
   * CSV readable), so that a pipeline that cannot run is refused when it is applied, not in a
   * worker's log at its first tick.
   */
  producer?: Producer | undefined;
}

export function createSchedules(redis: Redis, prefix: string, options: SchedulesOptions = {}): Schedules {
  const queue = new Queue(SCHEDULES_QUEUE, { connection: redis, prefix });
  queue.on('error', () => {}); // connection errors surface as failed commands
  const key = schedulesKey(prefix);

  function validate(id: string, spec: unknown, base?: string): ScheduleSpec {
    const issues: FieldIssue[] = [];
    if (!SCHEDULE_ID.test(id)) issues.push({ field: 'id', message: 'must match [a-z0-9][a-z0-9_-]{0,31}' });
    const parsed = scheduleSpecSchema.safeParse(spec);
    if (!parsed.success) issues.push(...toFieldIssues(parsed.error, spec));
    // A CSV path in a pipelines file is relative to the file, through the API relative to the
    // folder; either way it is stored relative to the folder, and the tick reads it only there.
    const csv = parsed.success && parsed.data.csv !== undefined ? confineSchedulePath(options.filesDir, parsed.data.csv, base) : undefined;
    if (csv && 'problem' in csv) issues.push({ field: 'csv', message: csv.problem });
    if (issues.length > 0 || !parsed.success) {
      throw new AppError('SCHEDULE_INVALID', `Invalid schedule ${id}: ${issues.map((i) => `${i.field || '(schedule)'}: ${i.message}`).join('; ')}`, { details: { issues } });
    }
    const result = parsed.data;
    if (csv && 'path' in csv) result.csv = csv.path;
    return result;
  }

  async function stored(id: string): Promise<StoredSchedule | undefined> {
    const raw = await redis.hget(key, id);
    return raw ? (JSON.parse(raw) as StoredSchedule) : undefined;
  }

  /** What `upsert` would do, without doing it. */
  async function changeOf(id: string, spec: ScheduleSpec, source: 'file' | 'api'): Promise<'created' | 'updated' | 'unchanged'> {
    const previous = await stored(id);
    if (!previous) return 'created';
    return previous.hash === specHash(spec) && previous.source === source ? 'unchanged' : 'updated';
  }

  async function upsert(id: string, spec: ScheduleSpec, source: 'file' | 'api') {
    const hash = specHash(spec);
    const previous = await stored(id);
    if (previous && previous.hash === hash && previous.source === source) return { schedule: previous, change: 'unchanged' as const };
    const schedule: StoredSchedule = { id, spec, source, hash, updatedAt: new Date().toISOString() };
    await redis.hset(key, id, JSON.stringify(schedule));
    if (spec.enabled === false) {
      await queue.removeJobScheduler(id);
    } else {
      const repeat = spec.cron !== undefined ? { pattern: spec.cron, ...(spec.tz ? { tz: spec.tz } : {}) } : { every: parseDuration(spec.every as string) as number };
      await queue.upsertJobScheduler(id, repeat, {
        name: TICK_JOB,
        data: { scheduleId: id },
        // A tick that fails to fetch its feed is retried; the definition is read at tick time.
        opts: { attempts: 3, backoff: { type: 'exponential', delay: 5_000 }, removeOnComplete: { count: 200 }, removeOnFail: { count: 500 } },
      });
    }
    return { schedule, change: previous ? ('updated' as const) : ('created' as const) };
  }

  async function view(schedule: StoredSchedule, run: ScheduleRun = {}): Promise<ScheduleView> {
    const scheduler = await queue.getJobScheduler(schedule.id);
    const next = scheduler?.next ?? (schedule.spec.cron && schedule.spec.enabled !== false ? nextCron(schedule.spec) : undefined);
    const { webhook, ...rest } = schedule.spec;
    const spec = webhook ? { ...rest, webhook: { host: urlHost(webhook.url) ?? '?', ...(webhook.events ? { events: webhook.events } : {}) } } : rest;
    return { ...schedule, spec, nextRunAt: next ? new Date(next).toISOString() : undefined, ...run };
  }

  /** Problems a tick of this pipeline would meet now, as field issues (empty: it would run). */
  async function dryTick(id: string, spec: ScheduleSpec): Promise<FieldIssue[]> {
    const producer = options.producer;
    if (!producer) return [];
    const dir = await mkdtemp(join(tmpdir(), 'zimage-dry-tick-'));
    try {
      const ingest = await prepareTickIngest({ id, spec }, new Date(), dir, { filesDir: options.filesDir, policy: { allowedHosts: [] }, fetchFeeds: false });
      if (ingest) await ingestBatchFile(producer, { ...ingest, validateOnly: true });
      return [];
    } catch (error) {
      return tickIssues(spec, error);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  }

  // One dry tick at a time in this process: each may read a CSV of up to 100,000 rows, and PUT
  // /v1/schedules is open to every API token.
  let dryTicks: Promise<unknown> = Promise.resolve();
  function dryTickInTurn(id: string, spec: ScheduleSpec): Promise<FieldIssue[]> {
    const turn = dryTicks.then(() => dryTick(id, spec));
    dryTicks = turn.catch(() => undefined);
    return turn;
  }

  async function validateWhole(id: string, spec: unknown, base?: string): Promise<ScheduleSpec> {
    const valid = validate(id, spec, base);
    // An unchanged definition was validated when it was stored.
    const previous = await stored(id);
    if (previous && previous.hash === specHash(valid)) return valid;
    const issues = await dryTickInTurn(id, valid);
    if (issues.length > 0) throw new AppError('SCHEDULE_INVALID', `Invalid schedule ${id}: ${issues.map((i) => `${i.field || '(schedule)'}: ${i.message}`).join('; ')}`, { details: { issues } });
    return valid;
  }

  return {
    queue,
    async put(id, spec, source = 'api') {
      return upsert(id, await validateWhole(id, spec), source);
    },
    async get(id) {
      const s = await stored(id);
      return s ? view(s, (await readScheduleRuns(redis, prefix, [id])).get(id)) : undefined;
    },
    async list() {
      const all = Object.values(await redis.hgetall(key)).map((raw) => JSON.parse(raw) as StoredSchedule);
      const runs = await readScheduleRuns(redis, prefix, all.map((s) => s.id));
      return Promise.all(all.sort((a, b) => a.id.localeCompare(b.id)).map((s) => view(s, runs.get(s.id))));
    },
    async remove(id) {
      const existed = (await redis.hdel(key, id)) > 0;
      const scheduler = await queue.removeJobScheduler(id);
      await forgetScheduleRuns(redis, prefix, id);
      return existed || scheduler;
    },
    async applyFile(path, applyOptions = {}) {
      let text: string;
      try {
        text = await readFile(path, 'utf8');
      } catch (error) {
        throw new AppError('SCHEDULE_INVALID', `Cannot read ${path}: ${(error as NodeJS.ErrnoException).code === 'ENOENT' ? 'no such file' : (error as Error).message}`, { action: 'Check the path of the pipelines file and that it is readable; nothing was changed.' });
      }
      let document: unknown;
      try {
        document = /\.json$/i.test(path) ? JSON.parse(text) : parseYaml(text);
      } catch (error) {
        throw new AppError('SCHEDULE_INVALID', `${path}: not valid ${/\.json$/i.test(path) ? 'JSON' : 'YAML'}: ${(error as Error).message}`);
      }
      const shape = fileSchema.safeParse(document ?? { pipelines: [] });
      if (!shape.success) throw new AppError('SCHEDULE_INVALID', `${path}: must be a list of pipelines, or { pipelines: [...] }, each with an id`);
      const entries = Array.isArray(shape.data) ? shape.data : shape.data.pipelines;
      // Everything first: one bad pipeline means nothing is changed.
      const problems: FieldIssue[] = [];
      const specs: [string, ScheduleSpec][] = [];
      const seen = new Set<string>();
      for (const [index, entry] of entries.entries()) {
        const { id, ...spec } = entry;
        // Each problem once, named by the pipeline's place in the file and its id.
        const where = `pipelines[${index}] (${id})`;
        if (seen.has(id)) problems.push({ field: `${where}.id`, message: `"${id}" is listed twice` });
        seen.add(id);
        try {
          specs.push([id, await validateWhole(id, spec, dirname(resolve(path)))]);
        } catch (error) {
          const issues = (error as AppError).details['issues'] as FieldIssue[] | undefined;
          for (const issue of issues ?? []) problems.push({ field: `${where}${issue.field ? `.${issue.field}` : ''}`, message: issue.message });
        }
      }
      if (problems.length > 0) {
        // The problems go in `issues` only: the CLI prints each under the message, once.
        throw new AppError('SCHEDULE_INVALID', `${path}: ${problems.length === 1 ? 'a problem' : `${problems.length} problems`}; nothing was changed`, { details: { issues: problems } });
      }
      const outcome: ApplyOutcome = { created: [], updated: [], unchanged: [], removed: [], kept: [] };
      for (const [id, spec] of specs) outcome[applyOptions.dryRun ? await changeOf(id, spec, 'file') : (await upsert(id, spec, 'file')).change].push(id);
      const current = Object.values(await redis.hgetall(key)).map((raw) => JSON.parse(raw) as StoredSchedule);
      for (const schedule of current.sort((a, b) => a.id.localeCompare(b.id))) {
        if (schedule.source !== 'file' || seen.has(schedule.id)) continue;
        if (!applyOptions.prune) {
          outcome.kept.push(schedule.id);
          continue;
        }
        if (!applyOptions.dryRun) {
          await redis.hdel(key, schedule.id);
          await queue.removeJobScheduler(schedule.id);
          await forgetScheduleRuns(redis, prefix, schedule.id);
        }
        outcome.removed.push(schedule.id);
      }
      return outcome;
    },
    async close() {
      await queue.close();
    },
  };
}

function specHash(spec: ScheduleSpec): string {
  return createHash('sha256').update(JSON.stringify(spec)).digest('hex');
}

/** Rows of a dry tick's problems looked at per pipeline; the rest are counted. */
const SHOWN_ROWS = 3;
/** A row's problem with a field the pipeline itself sets is the pipeline's, said once. */
const PIPELINE_FIELDS: Record<string, keyof ScheduleSpec> = { size: 'size', promptExtend: 'promptExtend', cache: 'cache', cacheNamespace: 'cacheNamespace', cacheTtl: 'cacheTtl', priority: 'priority', deadline: 'deadlineAfter', key: 'key', webhook: 'webhook', 'webhook.url': 'webhook' };

/**
 * A dry tick's failure as the pipeline's field issues: a problem with a field the pipeline sets
 * (its size, its key template) once under that field, an inline prompt's as `prompts[i]`, a CSV
 * row's by its line, the file itself as `csv`.
 */
function tickIssues(spec: ScheduleSpec, error: unknown): FieldIssue[] {
  if (!(error instanceof AppError)) return [{ field: '', message: (error as Error).message }];
  if (error.code === 'WEBHOOK_URL_REFUSED') return [{ field: 'webhook.url', message: error.message.replace(/^--webhook: /, '') }];
  const rows = error.details['rows'] as { line: number; issues: FieldIssue[] }[] | undefined;
  if (error.code !== 'BATCH_INVALID' || !rows || rows.length === 0) return [{ field: spec.csv ? 'csv' : '', message: error.message.replace(/^csv [^:]*: /, '') }];
  const issues = new Map<string, FieldIssue>();
  for (const row of rows.slice(0, SHOWN_ROWS)) {
    for (const issue of row.issues) {
      const own = PIPELINE_FIELDS[issue.field];
      const field = own !== undefined && spec[own] !== undefined ? issue.field : spec.prompts ? `prompts[${row.line - 1}]${issue.field ? `.${issue.field}` : ''}` : `csv line ${row.line}${issue.field ? ` ${issue.field}` : ''}`;
      // The batch command's option names in the pipeline's own.
      const message = issue.message.replace(/--prompt-template\b/g, 'promptTemplate').replace(/--key\b/g, 'key');
      issues.set(`${field}\0${message}`, { field, message });
    }
  }
  const more = Number(error.details['rejectedCount'] ?? rows.length) - Math.min(rows.length, SHOWN_ROWS);
  // Problems only with the pipeline's own fields: the other rows have the same.
  const ownOnly = [...issues.values()].every((issue) => PIPELINE_FIELDS[issue.field] !== undefined);
  if (more > 0 && !ownOnly) issues.set('more', { field: spec.prompts ? 'prompts' : 'csv', message: `${more} more ${spec.prompts ? 'prompts' : 'rows'} with problems` });
  return [...issues.values()];
}

function nextCron(spec: ScheduleSpec): number | undefined {
  try {
    return CronExpressionParser.parse(spec.cron as string, spec.tz ? { tz: spec.tz } : {}).next().getTime();
  } catch {
    return undefined;
  }
}
