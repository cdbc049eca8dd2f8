/**
 * `zimage batch FILE`: validate every row first, then enqueue.
 *
 * Pass 1 streams the file and validates each row exactly as it will be enqueued (key template
 * included), keeping the problems in memory and the valid jobs in a temporary file
 * (`PreparedJobSpill`). By default one bad row means nothing is enqueued; with `skipInvalid` the
 * bad rows go to a rejects file and the rest are enqueued. Pass 2 adds the validated jobs from
 * that file in chunks, a few chunks in flight so that preparing one overlaps Redis adding the
 * previous; if adding fails, the jobs added so far are removed.
 */
import { createWriteStream, type WriteStream } from 'node:fs';
import { stat } from 'node:fs/promises';
import { AppError, type FieldIssue, type WebhookSpec } from '@zimage/shared';
import { detectFormat, readBatchRows, rowToRequest, type BatchFormat, type RowMapping } from './batch-file.js';
import { DuplicateFinder, newBatchId, prepareJob, type PreparedJob } from './prepare-job.js';
import { PreparedJobSpill } from './prepared-job-spill.js';
import type { Producer } from './producer.js';

export interface IngestOptions extends RowMapping {
  path: string;
  format?: BatchFormat;
  skipInvalid?: boolean;
  /** Where rejected rows go with `skipInvalid`. @defaultValue `<path>.rejected.jsonl` */
  rejectedPath?: string;
  batchId?: string;
  /**
   * The batch's webhook: receives `batch.completed` (put it in `defaults.webhook` too for every
   * job's event). Checked against the SSRF rules before anything is read.
   */
  webhook?: WebhookSpec;
  onProgress?: (phase: 'validate' | 'enqueue', rows: number) => void;
  /** More rows than this is refused (PAYLOAD_TOO_LARGE) before anything is enqueued. */
  maxRows?: number;
  /** What the batch record names as its source. @defaultValue `path` */
  source?: string;
  /** Pass 1 only: every row validated as it would be enqueued, nothing enqueued (`schedule apply`). */
  validateOnly?: boolean;
}

export interface RejectedRow {
  line: number;
  issues: FieldIssue[];
}

export interface IngestReport {
  batchId: string;
  rows: number;
  enqueued: number;
  /** Rows whose idempotency key matched a job already in the queue (not added again). */
  alreadyQueued: number;
  rejectedCount: number;
  /** The first 1,000 rejected rows (all of them are in the rejects file). */
  rejected: RejectedRow[];
  rejectedPath: string | undefined;
}

const KEEP_REJECTED = 1000;
/** Distinct webhook hosts (origins) one batch's rows may name. */
const MAX_WEBHOOK_ORIGINS = 100;
/** Jobs per `addPrepared` call: one BullMQ `addBulk` (a MULTI of this many scripts). */
const CHUNK = 500;
/**
 * `addPrepared` calls in flight. Each first waits for its batch-index write, then builds its
 * `addBulk`; with three, one chunk is being built in Node while Redis runs the one before.
 */
const IN_FLIGHT = 3;

export async function ingestBatchFile(producer: Producer, options: IngestOptions): Promise<IngestReport> {
  const info = await stat(options.path).catch((error: NodeJS.ErrnoException) => {
    throw new AppError('BATCH_INVALID', `Cannot read ${options.path}: ${error.code === 'ENOENT' ? 'no such file' : error.message}`, { cause: error, action: 'Check the path (relative paths are from the current folder) and that the file is readable.' });
  });
  if (!info.isFile()) throw new AppError('BATCH_INVALID', `Cannot read ${options.path}: not a file`, { action: 'Give the path of a CSV or JSONL file.' });
  const format = options.format ?? detectFormat(options.path);
  for (const url of new Set([options.webhook?.url, options.defaults?.webhook?.url].filter((u): u is string => !!u))) {
    const problem = await producer.checkWebhook(url);
    if (problem) throw new AppError('WEBHOOK_URL_REFUSED', `--webhook: ${problem}`);
  }
  const batchId = options.batchId ?? newBatchId();
  const duplicates = new DuplicateFinder();
  const now = Date.now();
  const rejected: RejectedRow[] = [];
  let rejectedCount = 0;
  let rows = 0;
  let valid = 0;
  const rejectedPath = options.skipInvalid ? (options.rejectedPath ?? `${options.path}.rejected.jsonl`) : undefined;
  let rejectsFile: WriteStream | undefined;

  const prepareRow = (row: { line: number; fields: Record<string, unknown> }): { job: PreparedJob } | { issues: FieldIssue[] } => {
    const mapped = rowToRequest(row, options);
    if (!mapped.ok) return { issues: mapped.issues };
    const prepared = prepareJob(mapped.request, {
      now,
      batchId,
      line: row.line,
      templateValues: mapped.templateValues,
      rowKey: mapped.rowKey,
      keyLimits: producer.keyLimits,
      boundTenant: options.tenant,
    });
    return prepared.ok ? { job: prepared.job } : { issues: prepared.issues };
  };

  // Verdicts per origin for this ingest, a "does not resolve" included (the shared checker asks
  // again for those, and 100,000 rows naming one dead host would wait for DNS 100,000 times); and
  // few distinct hosts, so a hostile file cannot hold the ingest on one DNS look-up after another.
  const webhookVerdicts = new Map<string, string | undefined>();
  const webhookProblem = async (url: string): Promise<string | undefined> => {
    let origin: string;
    try {
      const parsed = new URL(url);
      origin = `${parsed.protocol}//${parsed.username || parsed.password ? 'userinfo@' : ''}${parsed.host}`;
    } catch {
      return 'must be an absolute http(s) URL';
    }
    if (webhookVerdicts.has(origin)) return webhookVerdicts.get(origin);
    if (webhookVerdicts.size >= MAX_WEBHOOK_ORIGINS) {
      return `more than ${MAX_WEBHOOK_ORIGINS} distinct webhook hosts in one batch; send the events to a registered endpoint (ZIMAGE_WEBHOOK_ENDPOINTS) or one batch webhook instead`;
    }
    const problem = await producer.checkWebhook(url);
    webhookVerdicts.set(origin, problem);
    return problem;
  };

  const closeRejects = async () => {
    const file = rejectsFile;
    rejectsFile = undefined;
    if (file) await new Promise<void>((resolve, reject) => file.end((error?: Error | null) => (error ? reject(error) : resolve())));
  };

  const spill = await PreparedJobSpill.create();
  try {
    // Pass 1: validate everything; keep the problems, and spill the valid jobs.
    for await (const row of readBatchRows(options.path, format)) {
      rows += 1;
      if (options.maxRows !== undefined && rows > options.maxRows) {
        await closeRejects();
        throw new AppError('PAYLOAD_TOO_LARGE', `more than ${options.maxRows} rows; split the batch`);
      }
      if ('error' in row && row.fatal) {
        await closeRejects();
        throw new AppError('BATCH_INVALID', `line ${row.line}: ${row.error}; nothing was enqueued`, {
          details: { rows: [...rejected, { line: row.line, issues: [{ field: '', message: row.error }] }].slice(0, KEEP_REJECTED), rejectedCount: rejectedCount + 1 },
        });
      }
      let outcome = 'error' in row ? { issues: [{ field: '', message: row.error }] } : prepareRow(row);
      const webhookUrl = 'job' in outcome ? outcome.job.webhook?.url : undefined;
      if (webhookUrl !== undefined) {
        // A row's own webhook gets the same refusal as a batch's (the delivery guard would block
        // it later, after the image was paid for). One DNS look-up per distinct URL.
        const problem = await webhookProblem(webhookUrl);
        if (problem) outcome = { issues: [{ field: 'webhook.url', message: problem }] };
      }
      if ('job' in outcome) {
        const clashes = duplicates.check(outcome.job, row.line);
        if (clashes.length > 0) outcome = { issues: clashes.map((c) => ({ ...c, message: c.message.replace('item', 'line') })) };
      }
      if ('job' in outcome) {
        valid += 1;
        // A validation-only pass keeps nothing: it has nothing to enqueue.
        const flushing = options.validateOnly ? undefined : spill.add(outcome.job);
        if (flushing) await flushing;
      } else {
        rejectedCount += 1;
        if (rejected.length < KEEP_REJECTED) rejected.push({ line: row.line, issues: outcome.issues });
        if (rejectedPath) {
          rejectsFile ??= createWriteStream(rejectedPath);
          rejectsFile.write(`${JSON.stringify({ line: row.line, issues: outcome.issues, row: 'fields' in row ? row.fields : undefined })}\n`);
        }
      }
      if (rows % 5000 === 0) options.onProgress?.('validate', rows);
    }
    await closeRejects();
    await spill.finish();

    if (rejectedCount > 0 && !options.skipInvalid) {
      throw new AppError('BATCH_INVALID', `${rejectedCount} of ${rows} rows are invalid; nothing was enqueued`, {
        details: { rows: rejected, rejectedCount },
      });
    }
    if (valid === 0) throw new AppError('BATCH_INVALID', `No valid rows in ${options.path} (${rows} rows read); nothing was enqueued`, { details: { rows: rejected, rejectedCount } });
    if (options.validateOnly) return { batchId, rows, enqueued: 0, alreadyQueued: 0, rejectedCount, rejected, rejectedPath: undefined };

    // Pass 2: enqueue the spilled jobs in chunks.
    await producer.beginBatch({ batchId, total: valid, source: options.source ?? options.path, ...(options.tenant ? { tenant: options.tenant } : {}), ...(options.webhook ? { webhook: options.webhook } : {}) });
    const added: string[] = [];
    const existing: string[] = [];
    const inFlight: Promise<void>[] = [];
    let failure: { error: unknown } | undefined;
    const send = (chunk: PreparedJob[]) =>
      producer.addPrepared(chunk).then(
        (outcome) => {
          added.push(...outcome.added);
          existing.push(...outcome.existing);
          options.onProgress?.('enqueue', added.length + existing.length);
        },
        (error: unknown) => {
          failure ??= { error };
        },
      );
    try {
      let read = 0;
      for await (const chunk of spill.read(CHUNK)) {
        if (failure) break;
        read += chunk.length;
        inFlight.push(send(chunk));
        if (inFlight.length >= IN_FLIGHT) await inFlight.shift();
      }
      await Promise.all(inFlight.splice(0));
      if (failure) throw failure.error;
      if (read !== valid) throw new Error(`${read} jobs were read back of the ${valid} validated`);
      // Rows whose idempotency key was already in the queue: the batch waits only for the new jobs.
      if (existing.length > 0) await producer.adjustBatchTotal(batchId, -existing.length);
    } catch (error) {
      await Promise.all(inFlight); // every add has settled, so `added` is complete
      const removed = await producer.abortBatch(batchId, added).catch(() => 0);
      throw new AppError('BATCH_INVALID', `Batch ${batchId} aborted: ${(error as Error).message}; removed ${removed} queued jobs`, { cause: error });
    }
    return { batchId, rows, enqueued: added.length, alreadyQueued: existing.length, rejectedCount, rejected, rejectedPath: rejectedCount > 0 ? rejectedPath : undefined };
  } finally {
    await closeRejects().catch(() => {});
    await spill.remove();
  }
}
