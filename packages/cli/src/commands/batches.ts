import { BATCH_STATES, type BatchState } from '@zimage/producer';
import { AppError, loadConfig, producerEnvSchema } from '@zimage/shared';
import { parseInteger } from '../parse-options.js';
import { producerFromEnv } from '../producer-from-env.js';

export interface BatchesFlags {
  state?: string;
  limit?: string;
  cursor?: string;
  json?: boolean;
}

/** `zimage batches`: batches newest first with state, counts and spend, a page at a time. */
export async function batchesCommand(flags: BatchesFlags): Promise<number> {
  const env = loadConfig(producerEnvSchema, process.env);
  if (flags.state !== undefined && !(BATCH_STATES as readonly string[]).includes(flags.state)) {
    throw new AppError('USAGE_INVALID', `--state: must be one of ${BATCH_STATES.join(', ')}`);
  }
  const limit = parseInteger('--limit', flags.limit);
  const producer = await producerFromEnv(env);
  try {
    const page = await producer.listBatches({ state: flags.state as BatchState | undefined, limit, cursor: flags.cursor });
    if (flags.json) {
      process.stdout.write(`${JSON.stringify(page)}\n`);
      return 0;
    }
    if (page.batches.length === 0) process.stderr.write('No batches.\n');
    for (const b of page.batches) {
      process.stdout.write(
        `${b.batchId}  ${b.state.padEnd(10)}  ${b.createdAt ?? '?'}  ${b.succeeded}/${b.total} succeeded · ${b.failed} failed · ${b.expired} expired · ` +
          `${b.cancelled} cancelled · ${b.pending} pending  $${b.costUsd.toFixed(3)}${b.source ? `  (${b.source})` : ''}\n`,
      );
    }
    if (page.nextCursor) process.stderr.write(`More: zimage batches --cursor ${page.nextCursor}${flags.state ? ` --state ${flags.state}` : ''}\n`);
    return 0;
  } finally {
    await producer.close();
  }
}
