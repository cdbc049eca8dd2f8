import { ingestBatchFile, type IngestReport } from '@zimage/producer';
import { type AppError, isAppError, loadConfig, producerEnvSchema } from '@zimage/shared';
import { parseEventTypes, parseInteger } from '../parse-options.js';
import { producerFromEnv } from '../producer-from-env.js';
import { defaultManifestPath } from '../manifest-path.js';
import { formatSummary, watchBatch, writeManifest } from '../watch-batch.js';

export interface BatchFlags {
  promptTemplate?: string;
  key?: string;
  size?: string;
  promptExtend?: boolean;
  cache?: boolean;
  cacheNamespace?: string;
  tenant?: string;
  cacheTtl?: string;
  cacheRefresh?: boolean;
  priority?: string;
  rowKey?: string;
  metadataColumns?: string;
  skipInvalid?: boolean;
  rejected?: string;
  watch?: boolean;
  manifest?: string;
  webhook?: string;
  webhookEvents?: string;
  json?: boolean;
}

/** `zimage batch FILE`: validate every row, enqueue, optionally watch to the end. */
export async function batchCommand(file: string, flags: BatchFlags): Promise<number> {
  const env = loadConfig(producerEnvSchema, process.env);
  const priority = parseInteger('--priority', flags.priority);
  const webhook = flags.webhook ? { url: flags.webhook, ...(flags.webhookEvents ? { events: parseEventTypes(flags.webhookEvents) } : {}) } : undefined;
  const producer = await producerFromEnv(env);
  try {
    let report: IngestReport;
    try {
      report = await ingestBatchFile(producer, {
        path: file,
        promptTemplate: flags.promptTemplate,
        keyTemplate: flags.key,
        rowKeyColumn: flags.rowKey,
        metadataColumns: flags.metadataColumns === undefined ? undefined : flags.metadataColumns.split(',').map((c) => c.trim()).filter(Boolean),
        defaults: {
          ...(flags.size ? { size: flags.size } : {}),
          ...(flags.promptExtend ? { promptExtend: true } : {}),
          ...(flags.cache ? { cache: true } : {}),
          ...(flags.cacheNamespace !== undefined ? { cacheNamespace: flags.cacheNamespace } : {}),
          ...(flags.cacheTtl !== undefined ? { cacheTtl: flags.cacheTtl } : {}),
          ...(flags.cacheRefresh ? { cacheRefresh: true } : {}),
          ...(priority !== undefined ? { priority } : {}),
          ...(flags.tenant !== undefined ? { tenant: flags.tenant } : {}),
          ...(webhook ? { webhook } : {}),
        },
        webhook,
        skipInvalid: flags.skipInvalid ?? false,
        ...(flags.rejected ? { rejectedPath: flags.rejected } : {}),
      });
    } catch (error) {
      if (isAppError(error) && error.code === 'BATCH_INVALID') printRejected(error);
      throw error;
    }
    process.stderr.write(`Enqueued ${report.enqueued} of ${report.rows} rows as batch ${report.batchId}\n`);
    if (report.alreadyQueued > 0) process.stderr.write(`${report.alreadyQueued} rows matched jobs already in the queue (same idempotency key); not added again\n`);
    if (report.rejectedCount > 0) process.stderr.write(`Skipped ${report.rejectedCount} invalid rows → ${report.rejectedPath}\n`);
    const summary = { batchId: report.batchId, rows: report.rows, enqueued: report.enqueued, alreadyQueued: report.alreadyQueued, rejectedCount: report.rejectedCount, rejectedPath: report.rejectedPath };
    if (!flags.watch) {
      process.stdout.write(flags.json ? `${JSON.stringify(summary)}\n` : `${report.batchId}\n`);
      return 0;
    }
    if (!flags.json) process.stdout.write(`${report.batchId}\n`);

    const outcome = await watchBatch(producer, report.batchId);
    process.stderr.write(`${formatSummary(outcome)}\n`);
    if (outcome.pausedReason) {
      process.stderr.write(`Queue paused: ${outcome.pausedReason}\n`);
      return 1;
    }
    const manifest = flags.manifest ?? defaultManifestPath(env.STORAGE_URL, report.batchId);
    const lines = await writeManifest(producer, report.batchId, manifest);
    process.stderr.write(`Results manifest (${lines} lines): ${manifest}\n`);
    if (flags.json) process.stdout.write(`${JSON.stringify({ ...summary, status: outcome.status, seconds: outcome.seconds, manifest })}\n`);
    return outcome.status.failed + outcome.status.expired > 0 ? 1 : 0;
  } finally {
    await producer.close();
  }
}

function printRejected(error: AppError): void {
  const rows = (error.details['rows'] as { line: number; issues: { field: string; message: string }[] }[] | undefined) ?? [];
  for (const row of rows.slice(0, 200)) {
    for (const issue of row.issues) process.stderr.write(`  line ${row.line}: ${issue.field ? `${issue.field}: ` : ''}${issue.message}\n`);
  }
  const count = Number(error.details['rejectedCount'] ?? rows.length);
  if (count > 200) process.stderr.write(`  … and ${count - 200} more rows (use --skip-invalid to write them all to a file)\n`);
}
