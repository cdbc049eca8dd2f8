/**
 * How far each consumer group of the event stream has got (XINFO GROUPS): read by the stream
 * trimmer for its logs and by `/metrics` for the lag gauges.
 */
import type { Redis } from 'ioredis';
import { eventsStreamKey } from './queue-names.js';

export interface EventGroupStatus {
  name: string;
  /**
   * Entries not yet delivered to the group, as Redis reports it (XINFO GROUPS `lag`). Null when
   * Redis cannot tell (after an XDEL past the group's position, during some replays, and always
   * on servers before 7.0). Redis 7 goes on overstating it, by the entries lost, once a group
   * has lost unread entries to the hard cap (fixed in later servers).
   */
  lag: number | null;
  /** Entries delivered to the group's consumers but not acknowledged yet (its PEL). */
  pending: number;
  /** The newest entry delivered to the group ('0-0': none yet). */
  lastDeliveredId: string;
}

/** The groups of `{prefix}:events`; none when the stream does not exist. */
export async function readEventGroups(redis: Redis, prefix: string): Promise<EventGroupStatus[]> {
  let reply: unknown[];
  try {
    reply = (await redis.xinfo('GROUPS', eventsStreamKey(prefix))) as unknown[];
  } catch (error) {
    if (error instanceof Error && error.message.includes('no such key')) return [];
    throw error;
  }
  return reply.map((flat) => {
    const fields = new Map<string, unknown>();
    const list = flat as unknown[];
    for (let i = 0; i + 1 < list.length; i += 2) fields.set(String(list[i]), list[i + 1]);
    const lag = fields.get('lag');
    return {
      name: String(fields.get('name')),
      lag: lag === null || lag === undefined ? null : Number(lag),
      pending: Number(fields.get('pending') ?? 0),
      lastDeliveredId: String(fields.get('last-delivered-id') ?? '0-0'),
    };
  });
}
