/**
 * The render cache's index in Redis: one string per namespace and render hash, holding the
 * stored image it points at (`RenderCacheEntry`, JSON) and expiring with the entry's TTL. The
 * index only points: the image stays in the object store, and every use re-checks it there
 * (`Storage.copy` with the entry's sha256), so an image deleted or overwritten since is a miss,
 * never a wrong image.
 */
import { renderCacheEntrySchema, renderCacheKey, type RenderCacheEntry } from '@zimage/shared';
import type { Redis } from 'ioredis';

/** Deletes the entry only if it is still the one read: a newer image remembered meanwhile stays. */
const FORGET_IF_SAME = `if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end return 0`;

export interface CachedRender {
  entry: RenderCacheEntry;
  /** The value as stored, to forget exactly this entry. */
  raw: string;
}

export class RenderCacheIndex {
  constructor(
    private readonly redis: Redis,
    private readonly prefix: string,
  ) {}

  async lookup(namespace: string, hash: string): Promise<CachedRender | undefined> {
    const key = renderCacheKey(this.prefix, namespace, hash);
    const raw = await this.redis.get(key);
    if (raw === null) return undefined;
    const parsed = safeJson(raw);
    const entry = renderCacheEntrySchema.safeParse(parsed);
    if (entry.success) return { entry: entry.data, raw };
    // Written by other code, or damaged: a miss, and not offered again.
    await this.forget(namespace, hash, raw);
    return undefined;
  }

  async remember(namespace: string, hash: string, entry: RenderCacheEntry, ttlMs: number): Promise<void> {
    await this.redis.set(renderCacheKey(this.prefix, namespace, hash), JSON.stringify(entry), 'PX', ttlMs);
  }

  async forget(namespace: string, hash: string, raw: string): Promise<void> {
    await this.redis.eval(FORGET_IF_SAME, 1, renderCacheKey(this.prefix, namespace, hash), raw);
  }
}

function safeJson(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return undefined;
  }
}
