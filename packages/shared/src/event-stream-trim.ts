/**
 * Trims the event stream (`{prefix}:events`) without losing what a consumer group has not read.
 *
 * XADD's own `MAXLEN ~ n` drops the oldest entries whoever still needs them: a consumer group that
 * lags (a dispatcher down for an hour, a `billing` consumer stopped for a deploy) silently loses
 * events. So the publishers' XADD only trims at a backstop far above maxLen, and this trim keeps:
 *   - the newest `maxLen` entries (history for `readEvents` and replays), and
 *   - every entry some group has not read yet, or has read but not acknowledged: a pending entry
 *     is what a consumer that crashed mid-handler gets again on restart, and trimming it would turn
 *     at-least-once into at-most-once for exactly the entries that were in flight;
 * but never more than the hard cap (`EVENT_STREAM_HARD_CAP_FACTOR` × maxLen): beyond it, the
 * oldest entries go even if unread, and the report says how many each group lost. The cap holds
 * memory when a group is abandoned (delete it: `XGROUP DESTROY`) or a consumer never acks.
 *
 * Done in a Lua script because "how many of the oldest entries has every group read" and the
 * XTRIM must see the same state: a group reading meanwhile is harmless, but one replayed or
 * created between a look and a trim would lose entries it was just promised. Exact trimming (not
 * `~`): a trim only removes what accumulated since the last one, and `~` would keep up to a whole
 * radix-tree node of entries every group has read, or trim past the hard cap unaccounted.
 *
 * Redis's own counters (`entries-read`, `lag`) are not used to decide: they are estimates that are
 * null in common states (a group that has not read yet, after a replay) and, on Redis 7, wrong
 * after a loss. Counting the head entries with XRANGE is exact, and costs what is being trimmed.
 */
import type { Redis } from 'ioredis';
import { AppError } from './errors.js';
import { EVENT_STREAM_HARD_CAP_FACTOR } from './event-publisher.js';
import { readEventGroups, type EventGroupStatus } from './event-group-status.js';
import { eventsStreamKey } from './queue-names.js';

export interface EventStreamTrimOptions {
  prefix: string;
  /** The stream's normal length (`ZIMAGE_EVENTS_MAXLEN`, PublishOptions.maxLen). */
  maxLen: number;
}

export interface EventGroupTrimStatus extends EventGroupStatus {
  /** Entries this trim removed at the hard cap before the group had read them (0: none). */
  unreadLost: number;
}

export interface EventStreamTrimReport {
  /** Entries in the stream after the trim. */
  length: number;
  /** Entries this trim removed, the hard cap's included. */
  trimmed: number;
  /** The hard cap removed entries (some of which a group may not have read: `unreadLost`). */
  hardCapHit: boolean;
  /** Every consumer group, as it stands after the trim. */
  groups: EventGroupTrimStatus[];
}

/** The most entries one script call removes: it holds Redis, and copies that many into Lua. */
const TRIM_BATCH_ENTRIES = 1_000;

/** The hard cap for a given maxLen (the stream never exceeds it for long while a trimmer runs). */
export function eventStreamHardCap(maxLen: number): number {
  return maxLen * EVENT_STREAM_HARD_CAP_FACTOR;
}

/**
 * One step of at most ARGV[3] entries. Returns { removed below the hard cap, removed at the hard
 * cap, then group name and unread entries lost, for each group that lost some }.
 * A group's bound is its last-delivered id (inclusive), or, when it has pending entries still in
 * the stream, its oldest one (exclusive). Pending entries already trimmed do not count: they are
 * gone either way (consumeEvents acks them when it meets them).
 */
const TRIM_SCRIPT = `
local stream = KEYS[1]
local max_len, hard_cap, batch = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3])
local len = redis.call('XLEN', stream)
if len <= max_len then return {0, 0} end

local function field(flat, name)
  for i = 1, #flat, 2 do
    if flat[i] == name then return flat[i + 1] end
  end
end
local function older(a, b)
  local am, as = string.match(a, '^(%d+)-(%d+)$')
  local bm, bs = string.match(b, '^(%d+)-(%d+)$')
  am, as, bm, bs = tonumber(am), tonumber(as), tonumber(bm), tonumber(bs)
  return am < bm or (am == bm and as < bs)
end
local function count_head(bound, limit)
  if limit <= 0 then return 0 end
  return #redis.call('XRANGE', stream, '-', bound, 'COUNT', limit)
end

local groups = redis.call('XINFO', 'GROUPS', stream)
local first = redis.call('XRANGE', stream, '-', '+', 'COUNT', 1)[1][1]
local bound_id, bound_open = nil, false
for _, group in ipairs(groups) do
  local id, open = field(group, 'last-delivered-id'), false
  if tonumber(field(group, 'pending')) > 0 then
    local oldest = redis.call('XPENDING', stream, field(group, 'name'), first, '+', 1)[1]
    if oldest then id, open = oldest[1], true end
  end
  if bound_id == nil or older(id, bound_id) or (id == bound_id and open) then bound_id, bound_open = id, open end
end

local trimmed = math.min(len - max_len, batch)
if bound_id then trimmed = count_head((bound_open and '(' or '') .. bound_id, trimmed) end
if trimmed > 0 then
  redis.call('XTRIM', stream, 'MAXLEN', len - trimmed)
  len = len - trimmed
end

local over = math.max(0, math.min(len - hard_cap, batch))
local result = {trimmed, over}
if over > 0 then
  for _, group in ipairs(groups) do
    local unread = over - count_head(field(group, 'last-delivered-id'), over)
    if unread > 0 then
      table.insert(result, field(group, 'name'))
      table.insert(result, unread)
    end
  end
  redis.call('XTRIM', stream, 'MAXLEN', len - over)
end
return result
`;

/**
 * Trims `{prefix}:events` back to maxLen entries, keeping those a group still needs up to the hard
 * cap (see above). Safe to run from several processes at once. Rejects on Redis errors.
 */
export async function trimEventStream(redis: Redis, options: EventStreamTrimOptions): Promise<EventStreamTrimReport> {
  const { maxLen } = options;
  if (!Number.isSafeInteger(maxLen) || maxLen < 1) throw new AppError('CONFIG_INVALID', `The event stream's maxLen must be a positive integer, not ${String(maxLen)}`);
  const key = eventsStreamKey(options.prefix);
  const hardCap = eventStreamHardCap(maxLen);
  const lost = new Map<string, number>();
  let trimmed = 0;
  let hardCapTrimmed = 0;
  for (;;) {
    const [below, atCap, ...losses] = (await redis.eval(TRIM_SCRIPT, 1, key, maxLen, hardCap, TRIM_BATCH_ENTRIES)) as [number, number, ...(string | number)[]];
    trimmed += below + atCap;
    hardCapTrimmed += atCap;
    for (let i = 0; i + 1 < losses.length; i += 2) {
      const name = String(losses[i]);
      lost.set(name, (lost.get(name) ?? 0) + Number(losses[i + 1]));
    }
    // A step stops at the batch size: only then can there be more to trim.
    if (below < TRIM_BATCH_ENTRIES && atCap < TRIM_BATCH_ENTRIES) break;
  }
  const [length, groups] = await Promise.all([redis.xlen(key), readEventGroups(redis, options.prefix)]);
  return {
    length,
    trimmed,
    hardCapHit: hardCapTrimmed > 0,
    groups: groups.map((group) => ({ ...group, unreadLost: lost.get(group.name) ?? 0 })),
  };
}
