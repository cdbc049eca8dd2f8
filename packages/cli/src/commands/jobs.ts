import { baseEnvSchema, createRedisConnection, loadConfig, waitForRedis } from '@zimage/shared';
import { listParked, retryParkedJob } from '@zimage/worker';
import type { Redis } from 'ioredis';

/** `zimage jobs parked`: paid images held for an operator (a key storage will never accept). */
export async function jobsParkedCommand(flags: { json?: boolean }): Promise<number> {
  return withRedis(async (redis, prefix) => {
    const parked = await listParked(redis, prefix);
    if (flags.json) {
      process.stdout.write(`${JSON.stringify({ parked })}\n`);
      return 0;
    }
    if (parked.length === 0) process.stdout.write('no parked jobs\n');
    for (const entry of parked) process.stdout.write(`${entry.jobId}  ${entry.at}  ${entry.code}: ${entry.message}\n  → ${entry.action}\n`);
    return 0;
  });
}

/** `zimage jobs retry JOB_ID [--key NEW_KEY]`: stores a parked paid image again now (no new generation). */
export async function jobsRetryCommand(jobId: string, flags: { key?: string; json?: boolean }): Promise<number> {
  return withRedis(async (redis, prefix) => {
    const retried = await retryParkedJob(redis, prefix, jobId, { key: flags.key });
    if (flags.json) process.stdout.write(`${JSON.stringify(retried)}\n`);
    else process.stdout.write(`job ${retried.jobId}: retrying its store at ${retried.key} (no new generation)\n`);
    return 0;
  });
}

async function withRedis(run: (redis: Redis, prefix: string) => Promise<number>): Promise<number> {
  const env = loadConfig(baseEnvSchema, process.env);
  const redis = createRedisConnection(env.REDIS_URL, 'producer');
  try {
    await waitForRedis(redis, env.REDIS_URL);
    return await run(redis, env.ZIMAGE_PREFIX);
  } finally {
    await redis.quit().catch(() => redis.disconnect());
  }
}
