/**
 * A bare BullMQ worker, in a process of its own, that takes one job of the generate queue and
 * never finishes it: the test kills it with SIGKILL, leaving the job active with a lock that is
 * never renewed — a crashed worker, as the stalled check sees it. Prints "taken" when it has one.
 * Env: ZIMAGE_TEST_REDIS_URL, ZIMAGE_TEST_PREFIX.
 */
import { GENERATE_QUEUE } from '@zimage/shared';
import { Worker } from 'bullmq';
import { Redis } from 'ioredis';

const connection = new Redis(process.env['ZIMAGE_TEST_REDIS_URL'] ?? '', { maxRetriesPerRequest: null });
new Worker(
  GENERATE_QUEUE,
  () => {
    process.stdout.write('taken\n');
    return new Promise(() => {});
  },
  { connection, prefix: process.env['ZIMAGE_TEST_PREFIX'] ?? '', lockDuration: 1_000, stalledInterval: 250 },
);
