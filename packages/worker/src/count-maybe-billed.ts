/**
 * A batch's *maybe billed* counter: calls of its jobs whose outcome is unknown (a timeout or a
 * reset after sending, a gateway 504, our own abort) — they may have been billed, and are shown
 * apart from spend. Counted only while the batch record exists (it is not recreated without TTL).
 */
import { batchKey, toMicroUsd } from '@zimage/shared';
import type { Redis } from 'ioredis';

const COUNT = `
if redis.call('EXISTS', KEYS[1]) == 1 then redis.call('HINCRBY', KEYS[1], 'maybeMicroUsd', ARGV[1]) end
return 1
`;

export async function countMaybeBilled(redis: Redis, prefix: string, batchId: string | undefined, priceUsd: number): Promise<void> {
  if (!batchId) return;
  await redis.eval(COUNT, 1, batchKey(prefix, batchId), String(toMicroUsd(priceUsd)));
}
