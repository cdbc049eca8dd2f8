/** `zimage schedule apply FILE | list | remove ID`: scheduled pipelines from version control. */
import { createSchedules } from '@zimage/producer';
import { baseEnvSchema, createRedisConnection, loadConfig, waitForRedis } from '@zimage/shared';
import type { Redis } from 'ioredis';

async function withSchedules<T>(fn: (schedules: ReturnType<typeof createSchedules>) => Promise<T>): Promise<T> {
  const env = loadConfig(baseEnvSchema, process.env);
  const redis: Redis = createRedisConnection(env.REDIS_URL, 'producer');
  try {
    await waitForRedis(redis, env.REDIS_URL);
    const schedules = createSchedules(redis, env.ZIMAGE_PREFIX);
    try {
      return await fn(schedules);
    } finally {
      await schedules.close();
    }
  } finally {
    redis.disconnect();
  }
}

export async function scheduleApplyCommand(file: string, flags: { json?: boolean }): Promise<number> {
  return withSchedules(async (schedules) => {
    const outcome = await schedules.applyFile(file);
    if (flags.json) process.stdout.write(`${JSON.stringify(outcome)}\n`);
    else {
      for (const [what, ids] of Object.entries(outcome)) if (ids.length > 0) process.stdout.write(`${what}: ${ids.join(', ')}\n`);
      if (Object.values(outcome).every((ids) => ids.length === 0)) process.stdout.write('nothing to apply\n');
    }
    return 0;
  });
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
    }
    return 0;
  });
}

export async function scheduleRemoveCommand(id: string): Promise<number> {
  return withSchedules(async (schedules) => {
    const removed = await schedules.remove(id);
    process.stdout.write(removed ? `removed ${id}\n` : `no schedule ${id}\n`);
    return removed ? 0 : 1;
  });
}
