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
import { dirname, isAbsolute, resolve } from 'node:path';
import { AppError, toFieldIssues, type FieldIssue } from '@zimage/shared';
import { CronExpressionParser } from 'cron-parser';
import { Queue } from 'bullmq';
import type { Redis } from 'ioredis';
import { parse as parseYaml } from 'yaml';
import { z } from 'zod';
import { parseDuration, SCHEDULE_ID, scheduleSpecSchema, type ScheduleSpec } from './schedule-spec.js';

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

export interface ScheduleView extends StoredSchedule {
  nextRunAt: string | undefined;
}

export interface ApplyOutcome {
  created: string[];
  updated: string[];
  unchanged: string[];
  removed: string[];
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
  applyFile(path: string): Promise<ApplyOutcome>;
  close(): Promise<void>;
}

export function createSchedules(redis: Redis, prefix: string): Schedules {
  const queue = new Queue(SCHEDULES_QUEUE, { connection: redis, prefix });
  queue.on('error', () => {}); // connection errors surface as failed commands
  const key = schedulesKey(prefix);

  function validate(id: string, spec: unknown, base?: string): ScheduleSpec {
    const issues: FieldIssue[] = [];
    if (!SCHEDULE_ID.test(id)) issues.push({ field: 'id', message: 'must match [a-z0-9][a-z0-9_-]{0,31}' });
    const parsed = scheduleSpecSchema.safeParse(spec);
    if (!parsed.success) issues.push(...toFieldIssues(parsed.error, spec));
    if (issues.length > 0 || !parsed.success) {
      throw new AppError('SCHEDULE_INVALID', `Invalid schedule ${id}: ${issues.map((i) => `${i.field || '(schedule)'}: ${i.message}`).join('; ')}`, { details: { issues } });
    }
    const result = parsed.data;
    // A CSV path in a pipelines file is relative to the file; the tick reads it on the worker.
    if (result.csv && base && !isAbsolute(result.csv)) result.csv = resolve(base, result.csv);
    return result;
  }

  async function stored(id: string): Promise<StoredSchedule | undefined> {
    const raw = await redis.hget(key, id);
    return raw ? (JSON.parse(raw) as StoredSchedule) : undefined;
  }

  async function upsert(id: string, spec: ScheduleSpec, source: 'file' | 'api') {
    const hash = createHash('sha256').update(JSON.stringify(spec)).digest('hex');
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

  async function view(schedule: StoredSchedule): Promise<ScheduleView> {
    const scheduler = await queue.getJobScheduler(schedule.id);
    const next = scheduler?.next ?? (schedule.spec.cron && schedule.spec.enabled !== false ? nextCron(schedule.spec) : undefined);
    return { ...schedule, nextRunAt: next ? new Date(next).toISOString() : undefined };
  }

  return {
    queue,
    async put(id, spec, source = 'api') {
      return upsert(id, validate(id, spec), source);
    },
    async get(id) {
      const s = await stored(id);
      return s ? view(s) : undefined;
    },
    async list() {
      const all = Object.values(await redis.hgetall(key)).map((raw) => JSON.parse(raw) as StoredSchedule);
      return Promise.all(all.sort((a, b) => a.id.localeCompare(b.id)).map(view));
    },
    async remove(id) {
      const existed = (await redis.hdel(key, id)) > 0;
      const scheduler = await queue.removeJobScheduler(id);
      return existed || scheduler;
    },
    async applyFile(path) {
      let text: string;
      try {
        text = await readFile(path, 'utf8');
      } catch (error) {
        throw new AppError('SCHEDULE_INVALID', `Cannot read ${path}: ${(error as NodeJS.ErrnoException).code === 'ENOENT' ? 'no such file' : (error as Error).message}`);
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
      entries.forEach((entry, index) => {
        const { id, ...spec } = entry;
        if (seen.has(id)) problems.push({ field: `pipelines[${index}].id`, message: `"${id}" is listed twice` });
        seen.add(id);
        try {
          specs.push([id, validate(id, spec, dirname(resolve(path)))]);
        } catch (error) {
          const issues = (error as AppError).details['issues'] as FieldIssue[] | undefined;
          for (const issue of issues ?? []) problems.push({ field: `pipelines[${index}]${issue.field ? `.${issue.field}` : ''}`, message: issue.message });
        }
      });
      if (problems.length > 0) {
        throw new AppError('SCHEDULE_INVALID', `${path}: ${problems.length} problem(s); nothing was changed:\n  - ${problems.map((p) => `${p.field}: ${p.message}`).join('\n  - ')}`, { details: { issues: problems } });
      }
      const outcome: ApplyOutcome = { created: [], updated: [], unchanged: [], removed: [] };
      for (const [id, spec] of specs) outcome[(await upsert(id, spec, 'file')).change].push(id);
      const current = Object.values(await redis.hgetall(key)).map((raw) => JSON.parse(raw) as StoredSchedule);
      for (const schedule of current) {
        if (schedule.source === 'file' && !seen.has(schedule.id)) {
          await redis.hdel(key, schedule.id);
          await queue.removeJobScheduler(schedule.id);
          outcome.removed.push(schedule.id);
        }
      }
      return outcome;
    },
    async close() {
      await queue.close();
    },
  };
}

function nextCron(spec: ScheduleSpec): number | undefined {
  try {
    return CronExpressionParser.parse(spec.cron as string, spec.tz ? { tz: spec.tz } : {}).next().getTime();
  } catch {
    return undefined;
  }
}
