/**
 * What one tick of a pipeline ingests: its items written to (or its CSV copied into) a private
 * folder, and the options `zimage batch` would ingest them with. The tick uses it, and so does
 * `schedule apply`, which validates each pipeline as its tick would (`validateOnly`).
 */
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import {
  AppError,
  checkWebhookUrl,
  classifyNetworkError,
  createOutboundAgent,
  declaredLength,
  discardBody,
  readCappedBody,
  systemResolver,
  tickBatchId,
  type Resolver,
  type WebhookUrlPolicy,
} from '@zimage/shared';
import { request } from 'undici';
import { MAX_BATCH_ITEMS } from '../batch-limits.js';
import type { IngestOptions } from '../ingest-batch-file.js';
import { copyScheduleFile } from './schedule-file.js';
import { parseDuration, renderTickTime, type ScheduleSpec } from './schedule-spec.js';

const FEED_TIMEOUT_MS = 15_000;
const MAX_FEED_BYTES = 20 * 1024 * 1024;

export interface TickSources {
  /** ZIMAGE_SCHEDULE_FILES_DIR: the only folder a CSV is read from. */
  filesDir: string | undefined;
  /** SSRF rules for feed URLs (the same as for webhooks). */
  policy: WebhookUrlPolicy;
  /** Whether to fetch a feed (a tick does; `schedule apply` does not: a feed's items change). */
  fetchFeeds: boolean;
  /** The DNS of the check before a feed is fetched (system DNS; tests answer for it). */
  resolve?: Resolver | undefined;
}

/**
 * The ingest of the tick of `schedule` at `tickAt`, its files in `dir`; undefined for a feed when
 * `fetchFeeds` is off. Throws SCHEDULE_INVALID for a CSV it may not read, NETWORK_ERROR and
 * friends for a feed that did not answer.
 */
export async function prepareTickIngest(schedule: { id: string; spec: ScheduleSpec }, tickAt: Date, dir: string, sources: TickSources): Promise<IngestOptions | undefined> {
  const { spec } = schedule;
  const render = (text: string | undefined) => (text === undefined ? undefined : renderTickTime(text, tickAt, spec.tz));
  let path: string;
  let format: 'csv' | 'jsonl';
  if (spec.csv) {
    // A private copy, checked and capped: the ingest then reads a file nobody else can change.
    path = join(dir, 'tick.csv');
    await copyScheduleFile(sources.filesDir, spec.csv, path);
    format = 'csv';
  } else {
    if (spec.feed && !sources.fetchFeeds) return undefined;
    const items: unknown[] = spec.prompts ? spec.prompts.map((prompt) => ({ prompt: render(prompt) })) : await fetchFeed(spec.feed as string, sources.policy, sources.resolve ?? systemResolver);
    path = join(dir, 'tick.jsonl');
    format = 'jsonl';
    // The schedule's metadata under each item's own (non-objects are left for validation to report).
    const withMetadata = items.map((item) =>
      spec.metadata && item && typeof item === 'object' && !Array.isArray(item)
        ? { ...(item as Record<string, unknown>), metadata: { ...spec.metadata, ...((item as { metadata?: Record<string, string> }).metadata ?? {}) } }
        : item,
    );
    await writeFile(path, `${withMetadata.map((item) => JSON.stringify(item)).join('\n')}\n`);
  }
  const deadlineMs = spec.deadlineAfter ? parseDuration(spec.deadlineAfter) : undefined;
  return {
    path,
    format,
    batchId: tickBatchId(schedule.id, tickAt),
    source: `schedule ${schedule.id} @ ${tickAt.toISOString()}`,
    promptTemplate: render(spec.promptTemplate),
    keyTemplate: render(spec.key),
    defaults: defaultsOf(spec, tickAt, deadlineMs),
    ...(spec.webhook ? { webhook: spec.webhook } : {}),
    maxRows: MAX_BATCH_ITEMS,
  };
}

export { tickBatchId } from '@zimage/shared';

function defaultsOf(spec: ScheduleSpec, tickAt: Date, deadlineMs: number | undefined) {
  return {
    ...(spec.size ? { size: spec.size } : {}),
    ...(spec.promptExtend !== undefined ? { promptExtend: spec.promptExtend } : {}),
    ...(spec.cache ? { cache: true } : {}),
    ...(spec.cache && spec.cacheNamespace !== undefined ? { cacheNamespace: spec.cacheNamespace } : {}),
    ...(spec.cache && spec.cacheTtl !== undefined ? { cacheTtl: spec.cacheTtl } : {}),
    ...(spec.priority !== undefined ? { priority: spec.priority } : {}),
    ...(deadlineMs !== undefined ? { deadline: new Date(tickAt.getTime() + deadlineMs).toISOString() } : {}),
    ...(spec.webhook ? { webhook: spec.webhook } : {}),
  };
}

/**
 * A JSON feed: an array of items, or `{ items: [...] }`. The URL is checked like a webhook's, and
 * the connection is guarded like one (the name cannot be rebound to a private address between the
 * check and the connect); no redirects; the body is read streamed and never past MAX_FEED_BYTES.
 */
async function fetchFeed(url: string, policy: WebhookUrlPolicy, resolve: Resolver): Promise<unknown[]> {
  const parsed = await checkWebhookUrl(url, policy, resolve);
  const what = `Feed ${parsed.host}`;
  // One pool per fetch: a tick fetches once, and nothing of one feed's connection is reused by another.
  const dispatcher = createOutboundAgent({ connectTimeoutMs: FEED_TIMEOUT_MS, guard: policy, requestTimeoutMs: FEED_TIMEOUT_MS, keepAliveTimeoutMs: 1 });
  let text: string;
  try {
    const response = await request(parsed, { method: 'GET', dispatcher, headers: { accept: 'application/json' }, signal: AbortSignal.timeout(FEED_TIMEOUT_MS) });
    if (response.statusCode !== 200) {
      discardBody(response.body);
      throw new AppError('NETWORK_ERROR', `${what} answered HTTP ${response.statusCode}${response.statusCode >= 300 && response.statusCode < 400 ? ' (redirects are not followed)' : ''}`);
    }
    const declared = declaredLength(response.headers);
    if (declared !== undefined && declared > MAX_FEED_BYTES) {
      discardBody(response.body);
      throw new AppError('PAYLOAD_TOO_LARGE', `${what}: ${declared} bytes (limit ${MAX_FEED_BYTES})`);
    }
    const read = await readCappedBody(response.body, MAX_FEED_BYTES);
    if (read.truncated) throw new AppError('PAYLOAD_TOO_LARGE', `${what}: more than ${MAX_FEED_BYTES} bytes`);
    text = read.bytes.toString('utf8');
  } catch (error) {
    // Our own verdicts pass; the connect-time guard's refusal is a network error like the others.
    if (error instanceof AppError && error.code !== 'WEBHOOK_URL_REFUSED') throw error;
    throw classifyNetworkError(error, what);
  } finally {
    await dispatcher.destroy().catch(() => {});
  }
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch {
    throw new AppError('BATCH_INVALID', `${what}: not valid JSON`);
  }
  const items = Array.isArray(json) ? json : Array.isArray((json as { items?: unknown })?.items) ? (json as { items: unknown[] }).items : undefined;
  if (!items) throw new AppError('BATCH_INVALID', `${what}: must be a JSON array of items, or { "items": [...] }`);
  return items;
}
