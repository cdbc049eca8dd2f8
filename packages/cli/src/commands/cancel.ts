import { AppError, loadConfig, producerEnvSchema } from '@zimage/shared';
import { producerFromEnv } from '../producer-from-env.js';

/**
 * `zimage cancel ID`: a batch id cancels every job of the batch that has not finished; a job id
 * cancels that job. A job that has not started never runs; a running one has its upstream call
 * aborted; one whose image is already paid for is still stored (never given up).
 */
export async function cancelCommand(id: string, flags: { json?: boolean }): Promise<number> {
  const env = loadConfig(producerEnvSchema, process.env);
  const producer = await producerFromEnv(env);
  try {
    if (await producer.getBatch(id)) {
      const outcome = await producer.cancelBatch(id);
      if (flags.json) process.stdout.write(`${JSON.stringify({ batchId: id, ...outcome })}\n`);
      else {
        process.stdout.write(
          `batch ${id}: ${outcome.cancelled} cancelled (never sent upstream) · ${outcome.cancelling} cancelling (running, aborted) · ` +
            `${outcome.storing} storing (already paid for, kept) · ${outcome.finished} already finished\n`,
        );
      }
      return 0;
    }
    if (!(await producer.getJob(id))) {
      throw new AppError('JOB_NOT_FOUND', `no batch or job with id ${id}`, { action: 'Check the id: a batch id (b_…) or a job id, as printed by zimage batch or zimage enqueue.' });
    }
    const outcome = await producer.cancelJob(id);
    if (flags.json) process.stdout.write(`${JSON.stringify(outcome)}\n`);
    else process.stdout.write(`job ${id}: ${outcome.state}${outcome.state === 'storing' ? ' (its image is already paid for: it is stored, not given up)' : ''}\n`);
    return 0;
  } finally {
    await producer.close();
  }
}
