/** A raw BullMQ worker doing nothing: the baseline of the pipeline-overhead scenario. */
import { Worker } from 'bullmq';
import { Redis } from 'ioredis';

const connection = new Redis(process.env['REDIS_URL'] ?? 'redis://127.0.0.1:6379', { maxRetriesPerRequest: null });
const worker = new Worker(process.env['QUEUE'] ?? 'noop', async () => undefined, { connection, concurrency: Number(process.env['CONCURRENCY'] ?? 16) });
process.once('SIGTERM', () => {
  void worker.close().then(() => {
    connection.disconnect();
    process.exit(0);
  });
});
