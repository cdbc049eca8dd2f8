import { baseEnvSchema, circuitBreakerKey, createRedisConnection, GENERATE_QUEUE, loadConfig, pauseReasonKey, storageHealthKey, waitForRedis } from '@zimage/shared';
import { enableAllAccounts } from '@zimage/worker';
import { Queue } from 'bullmq';

/**
 * `zimage resume`: resumes a paused queue once its cause is fixed: re-enables the accounts, closes
 * the upstream circuit breakers and forgets the storage failures counted so far.
 */
export async function resumeCommand(flags: { json?: boolean } = {}): Promise<number> {
  const env = loadConfig(baseEnvSchema, process.env);
  const connection = createRedisConnection(env.REDIS_URL, 'producer');
  try {
    await waitForRedis(connection, env.REDIS_URL);
  } catch (error) {
    connection.disconnect();
    throw error;
  }
  const queue = new Queue(GENERATE_QUEUE, { connection, prefix: env.ZIMAGE_PREFIX });
  try {
    const accounts = await enableAllAccounts(connection, env.ZIMAGE_PREFIX);
    await connection.del(pauseReasonKey(env.ZIMAGE_PREFIX), storageHealthKey(env.ZIMAGE_PREFIX));
    const breakers = await connection.keys(`${circuitBreakerKey(env.ZIMAGE_PREFIX, '')}*`);
    if (breakers.length > 0) await connection.del(...breakers);
    await queue.resume();
    if (flags.json) process.stdout.write(`${JSON.stringify({ resumed: true, accountsEnabled: accounts })}\n`);
    else process.stderr.write(`Queue resumed${accounts.length > 0 ? `; accounts enabled: ${accounts.join(', ')}` : ''}\n`);
    return 0;
  } finally {
    await queue.close();
    await connection.quit().catch(() => {});
  }
}
