/**
 * Batches newest first, from the index `beginBatch` writes (`{prefix}:batches`, scored by creation
 * time), filtered by state and creation time, a page at a time.
 *
 * The cursor names the last batch looked at (its score and id), not an offset: batches created
 * while a client pages do not shift the pages it has not read yet, and ties of one millisecond
 * are ordered by id. A batch whose record has expired is dropped from the index as it is met.
 */
import { AppError, batchIndexKey, batchKey } from '@zimage/shared';
import type { ProducerContext } from './producer-context.js';
import { batchStatusOf, withRunning, type BatchState, type BatchStatus } from './read-models.js';
import { decodeCursor, encodeCursor } from './page-cursor.js';

export const BATCH_STATES: readonly BatchState[] = ['running', 'cancelling', 'completed'];

export interface ListBatchesOptions {
  state?: BatchState | undefined;
  /** Only batches created at or after this time. */
  createdAfter?: Date | undefined;
  /** Only batches created before this time. */
  createdBefore?: Date | undefined;
  /** @defaultValue 50; at most 500 */
  limit?: number | undefined;
  /** `nextCursor` of the previous page. */
  cursor?: string | undefined;
}

export interface BatchPage {
  batches: BatchStatus[];
  /** Pass back as `cursor` for the next page; null when there is none. */
  nextCursor: string | null;
}

export const MAX_PAGE_LIMIT = 500;
/** Index entries one request reads at most, so that a filter matching nothing still answers quickly. */
const MAX_EXAMINED = 5000;
const CHUNK = 200;

interface BatchCursor {
  score: number;
  id: string;
}

export async function listBatches(context: ProducerContext, options: ListBatchesOptions = {}): Promise<BatchPage> {
  const limit = pageLimit(options.limit);
  if (options.state !== undefined && !BATCH_STATES.includes(options.state)) {
    throw new AppError('REQUEST_INVALID', `state: must be one of ${BATCH_STATES.join(', ')}`);
  }
  const after = options.cursor === undefined ? undefined : decodeCursor<BatchCursor>(options.cursor, isBatchCursor);
  const index = batchIndexKey(context.prefix);
  const max = Math.min(after?.score ?? Number.POSITIVE_INFINITY, options.createdBefore ? options.createdBefore.getTime() - 1 : Number.POSITIVE_INFINITY);
  const min = options.createdAfter?.getTime() ?? Number.NEGATIVE_INFINITY;
  const batches: BatchStatus[] = [];
  let last: BatchCursor | undefined;
  let examined = 0;
  let offset = 0;
  let more = true;
  while (more && batches.length < limit && examined < MAX_EXAMINED) {
    const flat = await context.connection.zrange(index, bound(max), bound(min), 'BYSCORE', 'REV', 'LIMIT', offset, CHUNK, 'WITHSCORES');
    const entries: BatchCursor[] = [];
    for (let i = 0; i < flat.length; i += 2) entries.push({ id: flat[i] as string, score: Number(flat[i + 1]) });
    offset += entries.length;
    more = entries.length === CHUNK;
    // Ties with the cursor's own score come in descending id order: skip those already served.
    const fresh = entries.filter((e) => !after || e.score < after.score || e.id < after.id);
    const hashes = await Promise.all(fresh.map((e) => context.connection.hgetall(batchKey(context.prefix, e.id))));
    for (const [i, entry] of fresh.entries()) {
      examined += 1;
      last = entry;
      const status = batchStatusOf(entry.id, hashes[i] ?? {});
      if (!status) {
        await context.connection.zrem(index, entry.id);
        offset -= 1;
        continue;
      }
      if (options.state === undefined || status.state === options.state) batches.push(status);
      if (batches.length === limit || examined === MAX_EXAMINED) {
        more = more || i < fresh.length - 1;
        break;
      }
    }
  }
  return { batches: await withRunning(context, batches), nextCursor: more && last ? encodeCursor(last) : null };
}

export function pageLimit(limit: number | undefined): number {
  if (limit === undefined) return 50;
  if (!Number.isInteger(limit) || limit < 1 || limit > MAX_PAGE_LIMIT) throw new AppError('REQUEST_INVALID', `limit: must be a whole number from 1 to ${MAX_PAGE_LIMIT}`);
  return limit;
}

function bound(value: number): string {
  return value === Number.POSITIVE_INFINITY ? '+inf' : value === Number.NEGATIVE_INFINITY ? '-inf' : String(value);
}

function isBatchCursor(value: unknown): value is BatchCursor {
  const v = value as BatchCursor;
  return typeof v === 'object' && v !== null && Number.isFinite(v.score) && typeof v.id === 'string';
}
