/** `zimage schedule apply FILE | list | remove ID`: scheduled pipelines from version control. */
import { createSchedules, type Producer } from '@zimage/producer';
import { createRedisConnection, loadConfig, producerEnvSchema, waitForRedis } from '@zimage/shared';
import type { Redis } from 'ioredis';
import { producerFromEnv } from '../producer-from-env.js';

/** `validate`: with a producer, so that `apply` checks each pipeline as its tick would (keys against STORAGE_URL, webhooks, rows). */
async function withSchedules<T>(fn: (schedules: ReturnType<typeof createSchedules>) => Promise<T>, validate = false): Promise<T> {
  const env = loadConfig(producerEnvSchema, process.env);
  const redis: Redis = createRedisConnection(env.REDIS_URL, 'producer');
  let producer: Producer | undefined;
  try {
    await waitForRedis(redis, env.REDIS_URL);
    if (validate) producer = await producerFromEnv(env);
    const schedules = createSchedules(redis, env.ZIMAGE_PREFIX, { filesDir: env.ZIMAGE_SCHEDULE_FILES_DIR, producer });
    try {
      return await fn(schedules);
    } finally {
      await schedules.close();
    }
  } finally {
    await producer?.close();
    redis.disconnect();
  }
}

const PLAN_WORDS = { created: ['create', 'created'], updated: ['update', 'updated'], unchanged: ['unchanged', 'unchanged'], removed: ['remove', 'removed'], kept: ['keep (not in the file; --prune removes it)', 'kept (not in the file; --prune removes it)'] } as const;

export async function scheduleApplyCommand(file: string, flags: { json?: boolean; dryRun?: boolean; prune?: boolean }): Promise<number> {
  return withSchedules(async (schedules) => {
    const outcome = await schedules.applyFile(file, { dryRun: flags.dryRun === true, prune: flags.prune === true });
    if (flags.json) process.stdout.write(`${JSON.stringify({ ...outcome, dryRun: flags.dryRun === true })}\n`);
    else {
      if (flags.dryRun) process.stdout.write('dry run: nothing was changed\n');
      for (const [what, ids] of Object.entries(outcome) as [keyof typeof PLAN_WORDS, string[]][]) {
        if (ids.length > 0) process.stdout.write(`${PLAN_WORDS[what][flags.dryRun ? 0 : 1]}: ${ids.join(', ')}\n`);
      }
      if (Object.values(outcome).every((ids) => ids.length === 0)) process.stdout.write('nothing to apply\n');
    }
    return 0;
  }, true);
}

export async function scheduleListCommand(flags: { json?: boolean }): Promise<number> {
  return withSchedules(async (schedules) => {
    const list = await schedules.list();
    if (flags.json) process.stdout.write(`${JSON.stringify(list)}\n`);
    else if (list.length === 0) process.stdout.write('no schedules\n');
    for (const s of flags.json ? [] : list) {
      const when = s.spec.cron ? `cron "${s.spec.cron}"${s.spec.tz ? ` ${s.spec.tz}` : ''}` : `every ${s.spec.every}`;
      const what = s.spec.prompts ? `${s.spec.prompts.length} prompt(s)` : s.spec.csv ? `csv ${s.spec.csv}` : `feed ${new URL(s.spec.feed as string).host}`;
      process.stdout.write(`${s.id}  ${when}  ${what}  next ${s.nextRunAt ?? '-'}  (${s.source}${s.spec.enabled === false ? ', disabled' : ''})\n`);
      process.stdout.write(`  last run ${s.lastRunAt ?? 'never'}  last batch ${s.lastBatchId ?? '-'}\n`);
      if (s.lastError) process.stdout.write(`  last error ${s.lastError.at}: ${s.lastError.code}: ${s.lastError.message}\n`);
    }
    return 0;
  });
}

export async function scheduleRemoveCommand(id: string, flags: { json?: boolean } = {}): Promise<number> {
  return withSchedules(async (schedules) => {
    const removed = await schedules.remove(id);
    if (flags.json) process.stdout.write(`${JSON.stringify({ id, removed })}\n`);
    else process.stdout.write(removed ? `removed ${id}\n` : `no schedule ${id}\n`);
    return removed ? 0 : 1;
  });
}
