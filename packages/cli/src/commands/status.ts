import { AppError, loadConfig, producerEnvSchema } from '@zimage/shared';
import { producerFromEnv } from '../producer-from-env.js';

/** `zimage status BATCH_ID`: the batch's counts (or a job's state, given a job id), and a paused queue. */
export async function statusCommand(id: string, flags: { json?: boolean }): Promise<number> {
  const env = loadConfig(producerEnvSchema, process.env);
  const producer = await producerFromEnv(env);
  try {
    const pause = await producer.pauseState();
    const batch = await producer.getBatch(id);
    const job = batch ? null : await producer.getJob(id);
    if (!batch && !job) throw new AppError('JOB_NOT_FOUND', `no batch or job with id ${id}`, { action: 'Check the id: a batch id (b_…) or a job id, as printed by zimage batch or zimage enqueue.' });
    const pausedInfo = pause.paused ? (pause.reason ?? { message: 'paused by an operator', action: 'run `zimage resume`' }) : undefined;
    if (flags.json) {
      process.stdout.write(`${JSON.stringify({ batch: batch ?? undefined, job: job ?? undefined, paused: pausedInfo, parkedJobs: pause.parkedJobs })}\n`);
      return 0;
    }
    if (batch) {
      process.stdout.write(
        `batch ${batch.batchId}${batch.source ? ` (${batch.source})` : ''}\n` +
          `  total ${batch.total} · succeeded ${batch.succeeded} · failed ${batch.failed} · expired ${batch.expired} · cancelled ${batch.cancelled} · pending ${batch.pending}\n` +
          `  created ${batch.createdAt ?? '?'}${batch.completedAt ? ` · completed ${batch.completedAt}` : ''}\n`,
      );
    } else if (job) {
      process.stdout.write(
        `job ${job.jobId}: ${job.state} after ${job.attempts} attempt(s)\n` +
          (job.result ? `  ${job.result.url} (${job.result.bytes} bytes, sha256 ${job.result.sha256})\n` : '') +
          (job.failedReason ? `  ${job.failedReason}\n` : ''),
      );
    }
    if (pausedInfo) process.stdout.write(`QUEUE PAUSED: ${'code' in pausedInfo ? `${pausedInfo.code}: ` : ''}${pausedInfo.message}\n  → ${pausedInfo.action}\n`);
    if (pause.parkedJobs > 0) process.stdout.write(`PARKED: ${pause.parkedJobs} paid image(s) held for an operator\n  → \`zimage jobs parked\` lists them and what to do\n`);
    return 0;
  } finally {
    await producer.close();
  }
}
