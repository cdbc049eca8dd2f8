import { TERMINAL_JOB_STATES, type Producer } from '@zimage/producer';
import { AppError, loadConfig, producerEnvSchema } from '@zimage/shared';
import { producerFromEnv } from '../producer-from-env.js';
import { formatSummary, WorkerPresence, watchBatch } from '../watch-batch.js';

/** How long one wait for a watched job lasts before the worker check runs again. */
const JOB_WATCH_SLICE_MS = 5_000;

/**
 * `zimage status ID`: the batch's counts (or a job's state, given a job id), and a paused queue.
 * `--watch` re-attaches: progress until the batch (or job) ends, warning while no worker runs.
 */
export async function statusCommand(id: string, flags: { json?: boolean; watch?: boolean }): Promise<number> {
  const env = loadConfig(producerEnvSchema, process.env);
  const producer = await producerFromEnv(env);
  try {
    if (!(await producer.getBatch(id)) && !(await producer.getJob(id))) {
      throw new AppError('JOB_NOT_FOUND', `no batch or job with id ${id}`, { action: 'Check the id: a batch id (b_…) or a job id, as printed by zimage batch or zimage enqueue.' });
    }
    if (flags.watch) {
      const code = await watch(producer, id, flags.json === true);
      if (code !== undefined) return code;
    }
    return await printStatus(producer, id, flags.json === true);
  } finally {
    await producer.close();
  }
}

/** Watches until the batch or job ends; an exit code when the watch itself decides it. */
async function watch(producer: Producer, id: string, json: boolean): Promise<number | undefined> {
  if (await producer.getBatch(id)) {
    const outcome = await watchBatch(producer, id);
    if (!json) process.stderr.write(`${formatSummary(outcome)}\n`);
    if (outcome.pausedReason) {
      process.stderr.write(`Queue paused: ${outcome.pausedReason}\n`);
      return 1;
    }
    return undefined;
  }
  const workers = new WorkerPresence(producer);
  for (;;) {
    await workers.check();
    const job = await producer.getJob(id);
    if (!job || TERMINAL_JOB_STATES.has(job.state)) return undefined;
    const pause = await producer.pauseState();
    if (pause.paused) return undefined; // printStatus says why
    await producer.waitForJob(id, { timeoutMs: JOB_WATCH_SLICE_MS }).catch((error: unknown) => {
      if (!(error instanceof AppError && error.code === 'WAIT_TIMEOUT')) throw error;
    });
  }
}

async function printStatus(producer: Producer, id: string, json: boolean): Promise<number> {
  const pause = await producer.pauseState();
  const batch = await producer.getBatch(id);
  const job = batch ? null : await producer.getJob(id);
  if (!batch && !job) throw new AppError('JOB_NOT_FOUND', `no batch or job with id ${id}`);
  const pausedInfo = pause.paused ? (pause.reason ?? { message: 'paused by an operator', action: 'run `zimage resume`' }) : undefined;
  if (json) {
    process.stdout.write(`${JSON.stringify({ batch: batch ?? undefined, job: job ?? undefined, paused: pausedInfo, parkedJobs: pause.parkedJobs })}\n`);
    return 0;
  }
  if (batch) {
    process.stdout.write(
      `batch ${batch.batchId}${batch.source ? ` (${batch.source})` : ''}: ${batch.state}\n` +
        `  total ${batch.total} · succeeded ${batch.succeeded} · failed ${batch.failed} · expired ${batch.expired} · cancelled ${batch.cancelled} · pending ${batch.pending} (running ${batch.running})\n` +
        `  created ${batch.createdAt ?? '?'}${batch.completedAt ? ` · completed ${batch.completedAt}` : ''} · spend $${batch.costUsd.toFixed(3)}${batch.maybeBilledUsd > 0 ? ` (+ $${batch.maybeBilledUsd.toFixed(3)} maybe billed)` : ''}${batch.cached > 0 ? ` · ${batch.cached} from the render cache (saved $${batch.savedUsd.toFixed(3)})` : ''}\n`,
    );
  } else if (job) {
    process.stdout.write(
      `job ${job.jobId}: ${job.state} after ${job.attempts} attempt(s)\n` +
        (job.result ? `  ${job.result.url} (${job.result.bytes} bytes, sha256 ${job.result.sha256})${job.result.cached ? ` from the render cache (a copy of ${job.result.cachedFrom?.key ?? '?'})` : ''}\n` : '') +
        (job.failedReason ? `  ${job.failedReason}\n` : ''),
    );
  }
  if (pausedInfo) process.stdout.write(`QUEUE PAUSED: ${'code' in pausedInfo ? `${pausedInfo.code}: ` : ''}${pausedInfo.message}\n  → ${pausedInfo.action}\n`);
  if (pause.parkedJobs > 0) process.stdout.write(`PARKED: ${pause.parkedJobs} paid image(s) held for an operator\n  → \`zimage jobs parked\` lists them and what to do\n`);
  return 0;
}
