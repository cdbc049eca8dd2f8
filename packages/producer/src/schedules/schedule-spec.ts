/**
 * A scheduled pipeline: when it ticks (a cron expression in a time zone, or an interval) and what
 * each tick creates (a batch from inline prompts, a CSV file or a JSON feed URL), with the same
 * template, key and job options as `zimage batch`. `{date}`, `{time}` and `{datetime}` in prompts,
 * the prompt template and the key are the tick's time in the schedule's time zone.
 */
import { parseDuration, webhookSchema } from '@zimage/shared';
import { CronExpressionParser } from 'cron-parser';
import { z } from 'zod';

export { parseDuration } from '@zimage/shared';

export const SCHEDULE_ID = /^[a-z0-9][a-z0-9_-]{0,31}$/;
/** Shortest interval: ticks faster than this are a mistake (tests use 1 s). */
const MIN_EVERY_MS = 1_000;

/** The fields of a pipeline, without the rules between them (for documents that describe it). */
export const scheduleSpecFields = z.strictObject({
    cron: z.string().min(1).max(120).optional(),
    tz: z.string().min(1).max(64).optional(),
    every: z.string().max(16).optional(),
    prompts: z.array(z.string().min(1).max(2000)).min(1).max(10_000).optional(),
    csv: z.string().min(1).max(4096).optional(),
    feed: z.url({ protocol: /^https?$/, error: 'must be an absolute http(s) URL' }).max(2048).optional(),
    promptTemplate: z.string().min(1).max(2000).optional(),
    key: z.string().min(1).max(1024).optional(),
    size: z.string().max(32).optional(),
    promptExtend: z.boolean().optional(),
    /** Render cache for every job of a tick (rows need a seed: a CSV column). */
    cache: z.boolean().optional(),
    cacheNamespace: z.string().min(1).max(64).optional(),
    cacheTtl: z.string().max(16).optional(),
    priority: z.number().int().min(0).max(100).optional(),
    metadata: z.record(z.string(), z.string()).optional(),
    webhook: webhookSchema.optional(),
    /** Work not started this long after the tick ends as expired (never billed), e.g. "2h". */
    deadlineAfter: z.string().max(16).optional(),
    enabled: z.boolean().optional(),
});

export const scheduleSpecSchema = scheduleSpecFields.superRefine((spec, ctx) => {
    if ((spec.cron === undefined) === (spec.every === undefined)) ctx.addIssue({ code: 'custom', path: ['cron'], message: 'give exactly one of cron and every' });
    const sources = [spec.prompts, spec.csv, spec.feed].filter((s) => s !== undefined).length;
    if (sources !== 1) ctx.addIssue({ code: 'custom', path: ['prompts'], message: 'give exactly one of prompts, csv and feed' });
    if (spec.tz !== undefined) {
      if (spec.cron === undefined) ctx.addIssue({ code: 'custom', path: ['tz'], message: 'a time zone goes with cron' });
      try {
        new Intl.DateTimeFormat('en', { timeZone: spec.tz });
      } catch {
        ctx.addIssue({ code: 'custom', path: ['tz'], message: `unknown time zone "${spec.tz}" (use an IANA name such as Asia/Shanghai)` });
      }
    }
    if (spec.cron !== undefined) {
      try {
        CronExpressionParser.parse(spec.cron, spec.tz ? { tz: spec.tz } : {}).next();
      } catch (error) {
        ctx.addIssue({ code: 'custom', path: ['cron'], message: `invalid cron expression: ${(error as Error).message}` });
      }
    }
    if (spec.every !== undefined) {
      const ms = parseDuration(spec.every);
      if (ms === undefined) ctx.addIssue({ code: 'custom', path: ['every'], message: 'must be a duration such as 30s, 15m, 6h or 1d' });
      else if (ms < MIN_EVERY_MS) ctx.addIssue({ code: 'custom', path: ['every'], message: 'must be at least 1s' });
    }
    if (spec.deadlineAfter !== undefined && parseDuration(spec.deadlineAfter) === undefined) {
      ctx.addIssue({ code: 'custom', path: ['deadlineAfter'], message: 'must be a duration such as 30m or 2h' });
    }
  });

export type ScheduleSpec = z.output<typeof scheduleSpecSchema>;

/** `{date}`, `{time}`, `{datetime}` of the tick in the schedule's time zone (others untouched). */
export function renderTickTime(text: string, tickAt: Date, tz: string | undefined): string {
  const parts = Object.fromEntries(
    new Intl.DateTimeFormat('en-CA', { timeZone: tz ?? 'UTC', year: 'numeric', month: '2-digit', day: '2-digit', hour: '2-digit', minute: '2-digit', hourCycle: 'h23' })
      .formatToParts(tickAt)
      .map((p) => [p.type, p.value]),
  );
  const date = `${parts['year']}-${parts['month']}-${parts['day']}`;
  const time = `${parts['hour']}-${parts['minute']}`;
  return text.replaceAll('{date}', date).replaceAll('{time}', time).replaceAll('{datetime}', `${date}T${time}`);
}
