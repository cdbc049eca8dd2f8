/**
 * `POST /v1/batches` (JSON array, NDJSON or CSV, streamed to a temporary file and ingested exactly
 * like `zimage batch`: every item validated first, all or nothing), `GET /v1/batches/:id`,
 * `GET /v1/batches` (newest first, by state and time, cursor pages), `GET /v1/batches/:id/results`
 * (the NDJSON manifest, streamed), `POST /v1/batches/:id/cancel`.
 */
import { createHash } from 'node:crypto';
import { createWriteStream } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable, Transform } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { AppError, BATCH_ID_PATTERN, BATCH_ID_RULE, EVENT_TYPES, isAppError, type FieldIssue } from '@zimage/shared';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { z } from 'zod';
import { checkChosenBatchId, tenantOf, visibleTo } from './tenant-scope.js';
import { ingestBatchFile, MAX_BATCH_ITEMS, readBatchRows, type BatchState, type BatchStatus, type ListBatchesOptions, type Producer, type RejectedRow } from '@zimage/producer';
import { fingerprintOf, type Idempotency } from './idempotency.js';
import { drainRefusedBody } from './drain-refused-body.js';
import { jsonArrayItems } from './json-array-items.js';
import { parseQuery } from './parse-query.js';
import { batchQuerySchema, type BatchQuery } from './batch-query.js';
import { type batchAcceptedSchema, type batchCancelSchema, batchListQuerySchema, type batchPageSchema, type ApiBatch } from './api-schemas.js';
import { JOB_BODY_LIMIT } from './routes-jobs.js';

const BATCHES_SCOPE = 'POST /v1/batches';


export function batchRoutes(app: FastifyInstance, producer: Producer, idempotency: Idempotency, maxBodyBytes: number): void {
  // Every batch body stays a stream: copied to disk, never held in memory whole. In its own scope,
  // so that other routes keep fastify's JSON parser (and its 64 KiB limit).
  void app.register(async (scope) => {
    scope.addContentTypeParser(['application/json', ...JSONL_TYPES, 'text/csv'], (_request, payload, done) => done(null, payload));
    scope.addHook('onSend', async (request) => drainRefusedBody(request.raw));
    scope.post('/v1/batches', { bodyLimit: maxBodyBytes }, (request, reply) => postBatch(request, reply));
  });

  async function postBatch(request: FastifyRequest, reply: FastifyReply) {
    const query = parseQuery(batchQuerySchema, request.query);
    if (query.batchId !== undefined) checkChosenBatchId(request, query.batchId);
    const format = formatOf(request);
    const dir = await mkdtemp(join(tmpdir(), 'zimage-api-batch-'));
    try {
      const path = join(dir, format === 'csv' ? 'batch.csv' : 'batch.jsonl');
      const bodyHash = await spool(request, format, path, maxBodyBytes).catch(uploadBroken);
      const tenant = tenantOf(request);
      const fingerprint = tenant === undefined ? fingerprintOf(format, JSON.stringify(query), bodyHash) : fingerprintOf(format, JSON.stringify(query), bodyHash, tenant);
      const scope = tenant === undefined ? BATCHES_SCOPE : `${BATCHES_SCOPE} tenant=${tenant}`;
      const outcome = await idempotency.run(request.headers['idempotency-key'], scope, fingerprint, async ({ key }) => {
        // The idempotency record alone cannot stop a second batch: it can be lost (Redis restarted,
        // or the process died mid-upload and the marker expired). So an idempotent upload's batch
        // id is named after the key and the request, and beginBatch refuses an id that exists.
        // A retry that finds its batch already there answers as the original did (202, the same
        // batch id and counts) rather than an error: the request it repeats did succeed. An
        // explicit ?batchId= is kept as given; a lost record then means a 400 "already exists".
        const derivedId = key !== undefined && query.batchId === undefined ? idempotentBatchId(key, fingerprint) : undefined;
        const replay = async () => {
          const existing = derivedId === undefined ? null : await producer.getBatch(derivedId);
          if (!existing) return undefined;
          reply.header('idempotent-replayed', 'true');
          return accepted(existing.batchId, ...(await recount(path, format, existing.total)));
        };
        const earlier = await replay();
        if (earlier) return earlier;
        try {
          const report = await ingest(producer, { path, format, query, batchId: derivedId ?? query.batchId, tenant });
          return accepted(report.batchId, report.rows, report.enqueued, report.alreadyQueued);
        } catch (error) {
          // A concurrent twin (both past a lost marker) created the batch first: beginBatch said so.
          if (isAppError(error) && error.code === 'REQUEST_INVALID') {
            const twin = await replay();
            if (twin) return twin;
          }
          throw error;
        }
      });
      if (outcome.replayed) reply.header('idempotent-replayed', 'true');
      return reply.code(outcome.status).send(outcome.body);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  }

  app.get('/v1/batches', async (request) => {
    const page = await producer.listBatches(listBatchesQuery(request.query));
    const now = Date.now();
    return { batches: page.batches.map((status) => batchResponse(status, now)), nextCursor: page.nextCursor } satisfies z.input<typeof batchPageSchema>;
  });

  app.get<{ Params: { id: string } }>('/v1/batches/:id', async (request) => {
    const status = await producer.getBatch(checkBatchId(request.params.id));
    if (!status || !visibleTo(request, status.tenant)) throw new AppError('JOB_NOT_FOUND', `no batch ${request.params.id}`);
    return batchResponse(status, Date.now());
  });

  app.get<{ Params: { id: string } }>('/v1/batches/:id/results', async (request, reply) => {
    const id = checkBatchId(request.params.id);
    const status = await producer.getBatch(id);
    if (!status || !visibleTo(request, status.tenant)) throw new AppError('JOB_NOT_FOUND', `no batch ${id}`);
    const entries = await producer.batchResults(id);
    const lines = (function* () {
      for (const entry of entries) yield `${JSON.stringify(entry)}\n`;
    })();
    return reply.type('application/x-ndjson').send(Readable.from(lines));
  });

  app.post<{ Params: { id: string } }>('/v1/batches/:id/cancel', async (request) => {
    const id = checkBatchId(request.params.id);
    const outcome = await idempotency.run(request.headers['idempotency-key'], `POST /v1/batches/${id}/cancel`, fingerprintOf(id), async () => ({
      status: 200,
      body: { batchId: id, ...(await producer.cancelBatch(id)) } satisfies z.input<typeof batchCancelSchema>,
    }));
    return outcome.body;
  });
}

/** `GET /v1/batches` and `/batches` take the same query. */
export function listBatchesQuery(raw: unknown): ListBatchesOptions {
  const query = parseQuery(batchListQuerySchema, raw);
  return {
    state: query.state as BatchState | undefined,
    createdAfter: query.createdAfter === undefined ? undefined : new Date(query.createdAfter),
    createdBefore: query.createdBefore === undefined ? undefined : new Date(query.createdBefore),
    limit: query.limit,
    cursor: query.cursor,
  };
}

/**
 * The batch id of an upload with an Idempotency-Key: the same key and request always name the same
 * batch. The request's fingerprint is part of it so that a key reused after its 24 hours for a
 * different upload starts a new batch instead of being answered with the old one.
 */
export function idempotentBatchId(key: string, fingerprint: string): string {
  return `b_${fingerprintOf(BATCHES_SCOPE, key, fingerprint).slice(0, 20)}`;
}

function accepted(batchId: string, items: number, enqueued: number, alreadyQueued: number) {
  return {
    status: 202,
    body: {
      batchId,
      items,
      enqueued,
      alreadyQueued,
      statusUrl: `/v1/batches/${batchId}`,
      resultsUrl: `/v1/batches/${batchId}/results`,
      galleryUrl: `/batches/${batchId}/gallery`,
    } satisfies z.input<typeof batchAcceptedSchema>,
  };
}

/**
 * The counts of an upload whose batch already exists: the items are the spooled file's rows (the
 * same file, the fingerprint says), and the batch's total is what was enqueued after jobs already
 * in the queue were taken off, so the rest were already queued, as the original answer said.
 */
async function recount(path: string, format: Format, total: number): Promise<[items: number, enqueued: number, alreadyQueued: number]> {
  let items = 0;
  for await (const _row of readBatchRows(path, format === 'csv' ? 'csv' : 'jsonl')) items += 1;
  const enqueued = Math.min(total, items);
  return [items, enqueued, items - enqueued];
}

/** Counts by state, progress, rate, ETA and spend, as `GET /v1/batches/:id` answers. */
export function batchResponse(status: BatchStatus, now: number): ApiBatch {
  const done = status.succeeded + status.failed + status.expired + status.cancelled;
  const started = status.createdAt ? Date.parse(status.createdAt) : now;
  const end = status.completedAt ? Date.parse(status.completedAt) : now;
  const minutes = Math.max((end - started) / 60_000, 1 / 60);
  const perMinute = status.succeeded / minutes;
  const etaSeconds = status.completedAt ? 0 : perMinute > 0 ? Math.round((status.pending / perMinute) * 60) : null;
  return {
    batchId: status.batchId,
    state: status.state,
    total: status.total,
    counts: { succeeded: status.succeeded, failed: status.failed, expired: status.expired, cancelled: status.cancelled, pending: status.pending, running: status.running },
    failedByCode: status.failedByCode,
    firstFailureAt: status.firstFailureAt,
    progress: status.total === 0 ? 1 : Math.round((done / status.total) * 1000) / 1000,
    imagesPerMinute: Math.round(perMinute * 10) / 10,
    etaSeconds,
    estimatedCostUsd: Math.round(status.costUsd * 1e6) / 1e6,
    maybeBilledUsd: Math.round(status.maybeBilledUsd * 1e6) / 1e6,
    cached: status.cached,
    savedUsd: Math.round(status.savedUsd * 1e6) / 1e6,
    createdAt: status.createdAt,
    completedAt: status.completedAt,
    source: status.source,
    resultsUrl: `/v1/batches/${status.batchId}/results`,
    galleryUrl: `/batches/${status.batchId}/gallery`,
  };
}

function checkBatchId(id: string): string {
  if (!BATCH_ID_PATTERN.test(id)) throw new AppError('JOB_NOT_FOUND', `no such batch (batch ids ${BATCH_ID_RULE})`);
  return id;
}

type Format = 'json' | 'jsonl' | 'csv';

const JSONL_TYPES = ['application/x-ndjson', 'application/jsonl', 'application/x-jsonlines'];

function formatOf(request: FastifyRequest): Format {
  const type = (request.headers['content-type'] ?? '').split(';')[0]?.trim().toLowerCase() ?? '';
  if (type === 'application/json') return 'json';
  if (type === 'text/csv') return 'csv';
  if (JSONL_TYPES.includes(type)) return 'jsonl';
  throw new AppError('UNSUPPORTED_MEDIA_TYPE', 'content-type: a batch is application/json (an array), application/x-ndjson or text/csv');
}

/**
 * Writes the body to `path` (a JSON array as one item per line, each as `JSON.stringify` writes
 * it); returns its sha256. Reads the body as it arrives: at most `maxBytes`, and for a JSON array
 * at most MAX_BATCH_ITEMS items of at most JOB_BODY_LIMIT bytes each, refused the moment either
 * is passed.
 */
/** A client that hangs up mid-upload is a client error (no answer reaches it), not a bug of ours. */
function uploadBroken(error: unknown): never {
  if (isAppError(error)) throw error;
  const code = (error as NodeJS.ErrnoException).code;
  if (code === 'ECONNRESET' || code === 'ERR_STREAM_PREMATURE_CLOSE' || (error as Error).message === 'aborted') {
    throw new AppError('REQUEST_INVALID', 'body: the connection closed before the body ended');
  }
  throw error;
}

async function spool(request: FastifyRequest, format: Format, path: string, maxBytes: number): Promise<string> {
  const hash = createHash('sha256');
  let bytes = 0;
  const meter = new Transform({
    transform(chunk: Buffer, _encoding, callback) {
      bytes += chunk.length;
      if (bytes > maxBytes) return callback(new AppError('PAYLOAD_TOO_LARGE', `body: more than ${maxBytes} bytes`));
      if (format !== 'json') hash.update(chunk);
      callback(null, chunk);
    },
  });
  const body = (request.body as Readable).pipe(meter);
  // The source's errors (a client that hangs up) reach the meter, and so the pipeline below.
  (request.body as Readable).on('error', (error) => meter.destroy(error));
  if (format !== 'json') {
    await pipeline(body, createWriteStream(path));
    if (bytes === 0) throw new AppError('BATCH_INVALID', 'body: the batch is empty');
    return hash.digest('hex');
  }
  let count = 0;
  const lines = async function* () {
    for await (const item of jsonArrayItems(body, { maxItemBytes: JOB_BODY_LIMIT })) {
      count += 1;
      if (count > MAX_BATCH_ITEMS) throw new AppError('PAYLOAD_TOO_LARGE', `body: more than ${MAX_BATCH_ITEMS} items; at most ${MAX_BATCH_ITEMS} per batch`);
      const line = `${JSON.stringify(item)}\n`;
      hash.update(line);
      yield line;
    }
  };
  try {
    await pipeline(lines, createWriteStream(path));
  } finally {
    // A refused upload is not read further: its connection is closed once the answer is sent.
    meter.destroy();
  }
  if (count === 0) throw new AppError('BATCH_INVALID', 'body: the batch has no items');
  return hash.digest('hex');
}

interface IngestRequest {
  /** The spooled body. */
  path: string;
  format: Format;
  query: BatchQuery;
  /** The batch's id: the one asked for, one derived from the idempotency key, or none (a new b_…). */
  batchId: string | undefined;
  /** The tenant of the token that sent it. */
  tenant: string | undefined;
}

async function ingest(producer: Producer, { path, format, query, batchId, tenant }: IngestRequest) {
  const events = query.webhookEvents?.split(',').map((e) => e.trim()).filter(Boolean);
  if (events && !events.every((e) => (EVENT_TYPES as readonly string[]).includes(e))) {
    throw new AppError('REQUEST_INVALID', `query.webhookEvents: must list event types among ${EVENT_TYPES.join(', ')}`);
  }
  const webhook = query.webhook ? { url: query.webhook, ...(events ? { events: events as (typeof EVENT_TYPES)[number][] } : {}) } : undefined;
  try {
    return await ingestBatchFile(producer, {
      path,
      format: format === 'csv' ? 'csv' : 'jsonl',
      promptTemplate: query.promptTemplate,
      keyTemplate: query.key,
      rowKeyColumn: query.rowKey,
      metadataColumns: query.metadataColumns?.split(',').map((c) => c.trim()).filter(Boolean),
      defaults: {
        ...(query.size ? { size: query.size } : {}),
        ...(query.promptExtend ? { promptExtend: query.promptExtend === 'true' } : {}),
        ...(query.cache ? { cache: query.cache === 'true' } : {}),
        ...(query.cacheNamespace !== undefined ? { cacheNamespace: query.cacheNamespace } : {}),
        ...(query.cacheTtl !== undefined ? { cacheTtl: query.cacheTtl } : {}),
        ...(query.cacheRefresh ? { cacheRefresh: query.cacheRefresh === 'true' } : {}),
        ...(query.priority ? { priority: Number(query.priority) } : {}),
        ...(query.deadline ? { deadline: query.deadline } : {}),
        ...(webhook ? { webhook } : {}),
      },
      ...(webhook ? { webhook } : {}),
      ...(batchId ? { batchId } : {}),
      ...(tenant ? { tenant } : {}),
      maxRows: MAX_BATCH_ITEMS,
    });
  } catch (error) {
    if (isAppError(error) && error.code === 'BATCH_INVALID' && Array.isArray(error.details['rows'])) {
      // JSON items are numbered from 0 (their line in the spooled file is index + 1); CSV rows keep their line.
      const items = (error.details['rows'] as RejectedRow[]).map((row) =>
        format === 'csv' ? { line: row.line, issues: row.issues } : { index: row.line - 1, issues: row.issues as FieldIssue[] },
      );
      throw new AppError('BATCH_INVALID', error.message.replace(/rows/g, 'items').replace(/^line (\d+)/, (_m, line: string) => (format === 'csv' ? `line ${line}` : `item ${Number(line) - 1}`)), {
        details: { items, rejectedCount: error.details['rejectedCount'] },
      });
    }
    throw error;
  }
}
