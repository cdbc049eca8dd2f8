import { CANCELLABLE_STATES, type CancellableState } from '@zimage/producer';
import { AppError, loadConfig, producerEnvSchema } from '@zimage/shared';
import { bulkScope, parseTime } from '../parse-options.js';
import { producerFromEnv } from '../producer-from-env.js';

export interface JobsCancelFlags {
  batch?: string;
  pipeline?: string;
  tenant?: string;
  state?: string;
  createdAfter?: string;
  createdBefore?: string;
  dryRun?: boolean;
  json?: boolean;
}

/** `zimage jobs cancel --batch ID | --pipeline ID | --tenant ID [--state S] [--created-after T] [--created-before T] [--dry-run]`. */
export async function jobsCancelCommand(flags: JobsCancelFlags): Promise<number> {
  const env = loadConfig(producerEnvSchema, process.env);
  if (flags.state !== undefined && !(CANCELLABLE_STATES as readonly string[]).includes(flags.state)) {
    throw new AppError('USAGE_INVALID', `--state: must be one of ${CANCELLABLE_STATES.join(', ')}`);
  }
  const { scope, label, json } = bulkScope('jobs cancel', flags);
  const createdAfter = parseTime('--created-after', flags.createdAfter);
  const createdBefore = parseTime('--created-before', flags.createdBefore);
  const producer = await producerFromEnv(env);
  try {
    const outcome = await producer.cancelJobs({ ...scope, state: flags.state as CancellableState | undefined, createdAfter, createdBefore }, { dryRun: flags.dryRun === true });
    if (flags.json) process.stdout.write(`${JSON.stringify({ ...json, ...outcome })}\n`);
    else if (outcome.dryRun) process.stdout.write(`dry run: ${outcome.matched} unfinished job(s) of ${label} match; nothing was changed\n`);
    else {
      process.stdout.write(
        `${label}: ${outcome.matched} matched · ${outcome.cancelled} cancelled (never sent upstream) · ${outcome.cancelling} cancelling (running, aborted) · ` +
          `${outcome.storing} storing (already paid for, kept) · ${outcome.finished} finished meanwhile\n`,
      );
    }
    return 0;
  } finally {
    await producer.close();
  }
}
