/**
 * Consumes the completion-event stream (`{prefix}:events`) with Redis consumer groups.
 *
 * Why consumer groups rather than plain XREAD: the group remembers, in Redis, how far it has read
 * and which entries were handed out but not yet acknowledged (the pending entries list, PEL). That
 * gives at-least-once delivery across crashes and restarts without the consumer storing a cursor,
 * and lets several processes of one group share the work (each entry goes to one of them), while
 * independent groups (`webhooks`, `billing`, …) each see every event.
 *
 * At-least-once means a handler can see an event more than once (a crash after the handler but
 * before XACK, an entry claimed from a consumer that was only slow). Events carry stable ids
 * (`evt_…`, see events.ts) precisely so that handlers can deduplicate.
 *
 * Only plain stream commands are used (XREADGROUP, XAUTOCLAIM, XPENDING, XACK, XGROUP, XRANGE): each
 * step is safe to repeat, so no Lua is needed for atomicity.
 */
import type { Redis } from 'ioredis';
import { zimageEventSchema, type ZimageEvent } from './events.js';
import { eventsStreamKey } from './queue-names.js';

export interface StreamEvent {
  /** Redis stream entry id, e.g. "1732400000000-0". */
  streamId: string;
  /** The entry's `event` field, parsed and validated with `zimageEventSchema`. */
  event: ZimageEvent;
  /** Raw extra fields of the entry (besides type/id/event), e.g. { webhook: '{"url":…}' }. */
  fields: Record<string, string>;
}

export interface DeadLetter {
  streamId: string;
  /** Every field of the entry, as stored (including type/id/event). */
  raw: Record<string, string>;
  /** Why it was given up: the parse/validation error, or the handler's last error. */
  error: unknown;
  /** How many times the group delivered the entry (including the last one). */
  deliveries: number;
}

export interface EventConsumerOptions {
  /**
   * A dedicated connection: XREADGROUP BLOCK occupies it for up to `blockMs`, so sharing it would
   * stall every other command. The helper never closes it.
   */
  redis: Redis;
  prefix: string;
  /** Consumer group name, e.g. 'webhooks' or 'billing'. Each group sees every event once. */
  group: string;
  /**
   * This process's name within the group (e.g. hostname-pid). Pending entries belong to a name: a
   * process restarted under the same name resumes its own pending entries at once; under a new
   * name, they are picked up by XAUTOCLAIM once idle for `claimIdleMs`.
   */
  consumer: string;
  /** Where a NEW group starts: '$' (only new events, default), '0' (everything still in the stream), or a stream id. Ignored when the group exists. */
  startId?: string;
  /** COUNT of each read, default 100. */
  batchSize?: number;
  /**
   * BLOCK of each read of new entries, default 5000. An abort is only noticed when the blocking
   * read returns, so stopping can take up to this long.
   */
  blockMs?: number;
  /**
   * Entries pending on ANOTHER consumer for longer than this are claimed (XAUTOCLAIM) — that
   * consumer crashed. Default 60000. Must be longer than a consumer can take to work through one
   * batch (batchSize × the slowest handler), or entries of a consumer that is merely slow are
   * claimed and handled twice. Checked every claimIdleMs / 2 (at the latest when a blocking read
   * returns), so an orphaned entry waits between claimIdleMs and about 1.5 × claimIdleMs + blockMs.
   */
  claimIdleMs?: number;
  /** After this many deliveries an entry that keeps failing is acked and reported via onDeadLetter instead of retried forever. Default 10. */
  maxDeliveries?: number;
  /**
   * How long a failed entry waits before it is retried, default 1000. New entries keep flowing
   * meanwhile: a failing entry delays only itself, not the events behind it.
   */
  retryDelayMs?: number;
  /**
   * Called for entries given up on: an `event` that is not JSON or fails the schema (at once, as
   * retrying cannot fix it), or an entry whose handler failed `maxDeliveries` times. The entry is
   * acked only after this resolves; if it throws, the entry stays pending and is retried like a
   * handler failure, so a dead letter is not lost either.
   */
  onDeadLetter?: (entry: DeadLetter) => void | Promise<void>;
  /**
   * Stops the consumer. Checked before each entry: the handler running when it aborts finishes
   * (and is acked), entries already read but not yet handled stay pending — redelivered to this
   * consumer name on its next start, or claimed by another after `claimIdleMs`.
   */
  signal?: AbortSignal;
}

const DEFAULTS = {
  startId: '$',
  batchSize: 100,
  blockMs: 5_000,
  claimIdleMs: 60_000,
  maxDeliveries: 10,
  retryDelayMs: 1_000,
};

/** [id, flat field list] — the list is null for a pending entry deleted from the stream (trimmed). */
type RawEntry = [id: string, fields: string[] | null];

/**
 * At-least-once consumption: on start it first re-delivers this consumer's own pending entries
 * (resumes after a crash), then claims entries idle on dead consumers, then reads new ones with
 * XREADGROUP ... '>'. Each entry is acked (XACK) only after `handler` resolves; a handler that throws
 * leaves the entry pending, and it is retried (with the next read of pending entries, `retryDelayMs`
 * later) until maxDeliveries. Entries whose `event` field is not valid JSON / fails the schema are
 * dead-lettered at once (acked, reported). Entries are handled one at a time, in stream order within
 * a read; a retried entry is handled after entries that came later.
 *
 * Resolves when `signal` aborts (after the current handler, or when the current blocking read
 * returns: up to `blockMs`). Rejects on Redis errors other than a vanished group (which is
 * recreated): a connection with `maxRetriesPerRequest: null` (the `worker` role) waits out a Redis
 * restart instead. Handler errors are not logged here: log them in the handler before rethrowing.
 */
export async function consumeEvents(options: EventConsumerOptions, handler: (event: StreamEvent) => Promise<void>): Promise<void> {
  const { redis, prefix, group, consumer, signal, onDeadLetter } = options;
  const batchSize = options.batchSize ?? DEFAULTS.batchSize;
  const blockMs = Math.max(1, options.blockMs ?? DEFAULTS.blockMs);
  const claimIdleMs = options.claimIdleMs ?? DEFAULTS.claimIdleMs;
  const claimEveryMs = Math.max(1, Math.floor(claimIdleMs / 2));
  const maxDeliveries = Math.max(1, options.maxDeliveries ?? DEFAULTS.maxDeliveries);
  const retryDelayMs = options.retryDelayMs ?? DEFAULTS.retryDelayMs;
  const key = eventsStreamKey(prefix);
  const aborted = (): boolean => signal?.aborted === true;

  await ensureConsumerGroup(redis, prefix, group, options.startId ?? DEFAULTS.startId);

  /** Acks and reports; returns false (entry left pending) when onDeadLetter throws. */
  const deadLetter = async (entry: DeadLetter): Promise<boolean> => {
    try {
      await onDeadLetter?.(entry);
    } catch {
      return false;
    }
    await redis.xack(key, group, entry.streamId);
    return true;
  };

  /**
   * Handles the entries of one read. `deliveries` gives each entry's delivery count (from XPENDING;
   * 1 for entries read with '>'). Returns whether some entry failed and stays pending. Keeps going
   * after a failure: every entry read has been delivered (its count went up), so skipping the rest
   * would use up their maxDeliveries without ever trying them.
   */
  const handleEntries = async (entries: RawEntry[], deliveries: (id: string) => number | undefined): Promise<boolean> => {
    let failed = false;
    for (const [streamId, flat] of entries) {
      if (aborted()) return failed;
      // Trimmed (MAXLEN) or deleted while pending: nothing left to handle, only the PEL entry.
      if (flat === null) {
        await redis.xack(key, group, streamId);
        continue;
      }
      const count = deliveries(streamId);
      // No longer in this consumer's PEL: acked or claimed by another consumer meanwhile.
      if (count === undefined) continue;
      const raw = toRecord(flat);
      const parsed = parseEntry(streamId, raw);
      if (!parsed.ok) {
        if (!(await deadLetter({ streamId, raw, error: parsed.error, deliveries: count }))) failed = true;
        continue;
      }
      // Delivered more often than allowed without a recorded failure: the process handling it
      // died each time (a poison event crashing it?) — give up before it crashes again.
      if (count > maxDeliveries) {
        const error = new Error(`event ${streamId} was delivered ${count} times without being acknowledged (maxDeliveries ${maxDeliveries})`);
        if (!(await deadLetter({ streamId, raw, error, deliveries: count }))) failed = true;
        continue;
      }
      try {
        await handler(parsed.value);
      } catch (error) {
        if (count >= maxDeliveries) {
          if (!(await deadLetter({ streamId, raw, error, deliveries: count }))) failed = true;
        } else {
          failed = true;
        }
        continue;
      }
      await redis.xack(key, group, streamId);
    }
    return failed;
  };

  /**
   * Re-reads this consumer's whole PEL (XREADGROUP with an id returns own pending entries after
   * it, and counts as a delivery). Returns whether some entry failed again.
   */
  const handlePending = async (): Promise<boolean> => {
    let failed = false;
    let cursor = '0';
    while (!aborted()) {
      const entries = entriesOf(await redis.xreadgroup('GROUP', group, consumer, 'COUNT', batchSize, 'STREAMS', key, cursor));
      const first = entries[0];
      const last = entries.at(-1);
      if (!first || !last) break;
      const counts = await pendingDeliveries(redis, key, group, consumer, first[0], last[0], entries.length);
      if (await handleEntries(entries, (id) => counts.get(id))) failed = true;
      cursor = last[0];
    }
    return failed;
  };

  let claimCursor = '0-0';
  /**
   * Takes over entries idle for claimIdleMs, whoever holds them. JUSTID: ownership moves without
   * reading the entry or counting a delivery; the next pending pass reads them, so claimed and
   * own pending entries share one path (delivery counts, dead letters, deleted entries).
   * Returns how many were claimed.
   */
  const claimIdle = async (): Promise<number> => {
    let claimed = 0;
    // A sweep scans at most 10 × COUNT × 10 PEL entries (XAUTOCLAIM looks at up to 10 × COUNT per
    // call); a longer PEL is covered over several sweeps, continuing from the cursor.
    for (let call = 0; call < 10 && !aborted(); call++) {
      const reply = (await redis.xautoclaim(key, group, consumer, claimIdleMs, claimCursor, 'COUNT', batchSize, 'JUSTID')) as unknown[];
      claimCursor = String(reply[0]);
      const ids = Array.isArray(reply[1]) ? (reply[1] as unknown[]) : [];
      claimed += ids.length;
      // Redis ≥ 7 lists entries deleted from the stream separately and has already dropped them
      // from the PEL; older servers return them among the ids, and the pending pass acks them.
      const deleted = Array.isArray(reply[2]) ? (reply[2] as unknown[]).map(String) : [];
      if (deleted.length > 0) await redis.xack(key, group, ...deleted);
      if (claimCursor === '0-0') break;
    }
    return claimed;
  };

  // When the pending entries are next re-read: now (resume after a crash), then only after a
  // failure or a claim. Undefined: nothing to retry.
  let pendingDueAt: number | undefined = 0;
  let claimDueAt = 0;
  const retryLater = (): void => {
    const at = Date.now() + retryDelayMs;
    pendingDueAt = pendingDueAt === undefined ? at : Math.min(pendingDueAt, at);
  };

  while (!aborted()) {
    try {
      if (pendingDueAt !== undefined && Date.now() >= pendingDueAt) {
        pendingDueAt = undefined;
        if (await handlePending()) retryLater();
        continue;
      }
      if (Date.now() >= claimDueAt) {
        claimDueAt = Date.now() + claimEveryMs;
        if ((await claimIdle()) > 0) pendingDueAt = 0;
        continue;
      }
      // Block no longer than until the next retry or claim sweep is due (never 0: BLOCK 0 is forever).
      const dueAt = Math.min(claimDueAt, pendingDueAt ?? Number.POSITIVE_INFINITY);
      const block = Math.max(1, Math.min(blockMs, dueAt - Date.now()));
      const entries = entriesOf(await redis.xreadgroup('GROUP', group, consumer, 'COUNT', batchSize, 'BLOCK', block, 'STREAMS', key, '>'));
      if (await handleEntries(entries, () => 1)) retryLater();
    } catch (error) {
      // The stream key was deleted (and its groups with it) or the group destroyed: start over
      // like a new group rather than failing a long-running consumer.
      if (!isNoGroupError(error)) throw error;
      await ensureConsumerGroup(redis, prefix, group, options.startId ?? DEFAULTS.startId);
    }
  }
}

/** Creates the group if missing (XGROUP CREATE ... MKSTREAM), ignoring BUSYGROUP. */
export async function ensureConsumerGroup(redis: Redis, prefix: string, group: string, startId = '$'): Promise<void> {
  // Look first: Redis refuses XGROUP CREATE (a write) when it is out of memory, even for a group
  // that already exists, and a dispatcher must still be able to start then.
  try {
    const groups = (await redis.xinfo('GROUPS', eventsStreamKey(prefix))) as unknown[][];
    if (groups.some((fields) => fields[fields.indexOf('name') + 1] === group)) return;
  } catch {
    // No stream yet: create it below.
  }
  try {
    // MKSTREAM: a consumer may start before any worker has published anything.
    await redis.xgroup('CREATE', eventsStreamKey(prefix), group, startId, 'MKSTREAM');
  } catch (error) {
    // BUSYGROUP: the group exists; its cursor and pending entries are kept, which is the point.
    if (!(error instanceof Error && error.message.startsWith('BUSYGROUP'))) throw error;
  }
}

/**
 * Moves the group's cursor so that entries after `fromId` are delivered again (XGROUP SETID):
 * replay. '0' replays everything still in the stream. Use `streamIdAt` to replay from a time.
 * Creates the group at `fromId` when it does not exist. Replayed entries are delivered like new
 * ones (to whichever consumer of the group reads next; consumers blocked in a read see them when
 * their read returns, within blockMs).
 */
export async function replayGroupFrom(redis: Redis, prefix: string, group: string, fromId: string): Promise<void> {
  try {
    await redis.xgroup('SETID', eventsStreamKey(prefix), group, fromId);
  } catch (error) {
    if (!isNoGroupError(error)) throw error;
    await ensureConsumerGroup(redis, prefix, group, fromId);
  }
}

/**
 * Non-group read of a range (XRANGE), for tools: events with stream ids in [fromId, toId], parsed
 * like above (invalid entries skipped). count default 1000. Reads do not affect any group. To page,
 * call again with fromId `(` + the last streamId (exclusive range).
 */
export async function readEvents(redis: Redis, prefix: string, fromId = '-', toId = '+', count = 1000): Promise<StreamEvent[]> {
  const entries = await redis.xrange(eventsStreamKey(prefix), fromId, toId, 'COUNT', count);
  const events: StreamEvent[] = [];
  for (const [streamId, flat] of entries) {
    const parsed = parseEntry(streamId, toRecord(flat));
    if (parsed.ok) events.push(parsed.value);
  }
  return events;
}

/**
 * Non-group read of what follows `afterId` (XREAD, blocking up to `blockMs` when nothing is
 * there yet), for followers that keep their own position: `lastId` is where to read on from,
 * past invalid entries too (which are skipped, as in readEvents). The connection is occupied for
 * the block: give it one of its own.
 */
export async function readEventsAfter(redis: Redis, prefix: string, afterId: string, options: { count?: number; blockMs?: number } = {}): Promise<{ events: StreamEvent[]; lastId: string }> {
  const reply = (await redis.xread('COUNT', options.count ?? 100, 'BLOCK', Math.max(1, options.blockMs ?? 1_000), 'STREAMS', eventsStreamKey(prefix), afterId)) as [key: string, items: [string, string[]][]][] | null;
  const entries = reply?.[0]?.[1] ?? [];
  const events: StreamEvent[] = [];
  for (const [streamId, flat] of entries) {
    const parsed = parseEntry(streamId, toRecord(flat));
    if (parsed.ok) events.push(parsed.value);
  }
  return { events, lastId: entries.at(-1)?.[0] ?? afterId };
}

/** The id of the stream's newest entry ('0-0' when empty): "from now on" as a position. */
export async function lastEventId(redis: Redis, prefix: string): Promise<string> {
  const [newest] = await redis.xrevrange(eventsStreamKey(prefix), '+', '-', 'COUNT', 1);
  return newest?.[0] ?? '0-0';
}

/**
 * Converts a Date or ISO time to the smallest stream id at that time ("<ms>-0"). Stream ids
 * generated by XADD `*` start with the server's time in ms, so this turns "since 10:00" into a
 * range bound for readEvents or a replay point for replayGroupFrom.
 */
export function streamIdAt(time: Date | string): string {
  const ms = (typeof time === 'string' ? new Date(time) : time).getTime();
  if (!Number.isFinite(ms) || ms < 0) throw new RangeError(`Not a valid time for a stream id: ${String(time)}`);
  return `${ms}-0`;
}

const OWN_FIELDS = new Set(['type', 'id', 'event']);

function parseEntry(streamId: string, raw: Record<string, string>): { ok: true; value: StreamEvent } | { ok: false; error: unknown } {
  const json = raw['event'];
  if (json === undefined) return { ok: false, error: new Error(`stream entry ${streamId} has no "event" field`) };
  let data: unknown;
  try {
    data = JSON.parse(json);
  } catch (error) {
    return { ok: false, error };
  }
  const result = zimageEventSchema.safeParse(data);
  if (!result.success) return { ok: false, error: result.error };
  const fields: Record<string, string> = {};
  for (const [name, value] of Object.entries(raw)) if (!OWN_FIELDS.has(name)) fields[name] = value;
  return { ok: true, value: { streamId, event: result.data, fields } };
}

function toRecord(flat: string[]): Record<string, string> {
  const record: Record<string, string> = {};
  for (let i = 0; i + 1 < flat.length; i += 2) record[flat[i] as string] = flat[i + 1] as string;
  return record;
}

/** XREADGROUP reply for one stream: [[key, entries]] or null (nothing within BLOCK). */
function entriesOf(reply: [key: string, items: RawEntry[]][] | null): RawEntry[] {
  return reply?.[0]?.[1] ?? [];
}

/** Delivery counts of this consumer's pending entries in [first, last] (XPENDING extended form). */
async function pendingDeliveries(redis: Redis, key: string, group: string, consumer: string, first: string, last: string, count: number): Promise<Map<string, number>> {
  const rows = (await redis.xpending(key, group, first, last, count, consumer)) as [id: string, consumer: string, idleMs: number, deliveries: number][];
  return new Map(rows.map(([id, , , deliveries]) => [id, Number(deliveries)]));
}

function isNoGroupError(error: unknown): boolean {
  return error instanceof Error && error.message.startsWith('NOGROUP');
}
