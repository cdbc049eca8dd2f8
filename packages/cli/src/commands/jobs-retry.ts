import { AppError, loadConfig, producerEnvSchema } from '@zimage/shared';
import { bulkScope, parseTime } from '../parse-options.js';
import { producerFromEnv } from '../producer-from-env.js';
import { jobsRetryCommand } from './jobs.js';

/** `zimage jobs retry`: a parked JOB_ID (stored again from its checkpoint), or a batch's failed jobs by filter. */
export async function jobsRetryAnyCommand(jobId: string | undefined, flags: Partial<JobsRetryBatchFlags> & { key?: string }): Promise<number> {
  const scoped = flags.batch !== undefined || flags.pipeline !== undefined || flags.tenant !== undefined;
  if ((jobId === undefined) === !scoped) throw new AppError('USAGE_INVALID', 'jobs retry: give a parked JOB_ID or one of --batch, --pipeline, --tenant');
  if (jobId !== undefined) {
    const batchOnly = (['code', 'createdAfter', 'createdBefore', 'dryRun'] as const).find((name) => flags[name] !== undefined);
    if (batchOnly) throw new AppError('USAGE_INVALID', `jobs retry: --${batchOnly.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`)} goes with --batch, --pipeline or --tenant`);
    return jobsRetryCommand(jobId, flags);
  }
  if (flags.key !== undefined) throw new AppError('USAGE_INVALID', 'jobs retry: --key goes with a parked JOB_ID');
  return jobsRetryBatchCommand(flags as JobsRetryBatchFlags);
}

export interface JobsRetryBatchFlags {
  batch?: string;
  pipeline?: string;
  tenant?: string;
  code?: string;
  createdAfter?: string;
  createdBefore?: string;
  dryRun?: boolean;
  json?: boolean;
}

/** `zimage jobs retry --batch ID | --pipeline ID | --tenant ID [--code CODE] [--created-after T] [--created-before T] [--dry-run]`. */
export async function jobsRetryBatchCommand(flags: JobsRetryBatchFlags): Promise<number> {
  const env = loadConfig(producerEnvSchema, process.env);
  const { scope, label, json } = bulkScope('jobs retry', flags);
  const createdAfter = parseTime('--created-after', flags.createdAfter);
  const createdBefore = parseTime('--created-before', flags.createdBefore);
  const producer = await producerFromEnv(env);
  try {
    const outcome = await producer.retryJobs({ ...scope, code: flags.code, createdAfter, createdBefore }, { dryRun: flags.dryRun === true });
    const codes = Object.entries(outcome.byCode).map(([code, count]) => `${count} ${code}`).join(', ');
    if (flags.json) process.stdout.write(`${JSON.stringify({ ...json, ...outcome })}\n`);
    else if (outcome.dryRun) process.stdout.write(`dry run: ${outcome.matched} failed job(s) of ${label} match${codes ? ` (${codes})` : ''}; nothing was changed\n`);
    else {
      process.stdout.write(
        `${label}: ${outcome.matched} matched${codes ? ` (${codes})` : ''} · ${outcome.retried} back in the queue with their checkpoints and fresh attempts · ` +
          `${outcome.finished} retried elsewhere meanwhile\n`,
      );
    }
    return 0;
  } finally {
    await producer.close();
  }
}
