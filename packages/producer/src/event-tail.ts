/**
 * Follows the end of the event stream for the producer's waiters (`waitForJob`, `waitForBatch`),
 * so a thousand waits share one blocking read. Its connection is opened with the first
 * subscriber and closed with the last.
 */
import { lastEventId, readEventsAfter, type ZimageEvent } from '@zimage/shared';
import type { Redis } from 'ioredis';

export type EventListener = (event: ZimageEvent) => void;

/** How long one read blocks: also how long the last unsubscribe keeps the connection. */
const BLOCK_MS = 1_000;
/** After a failed read (Redis away): the waiters' own re-checks report the failure. */
const RETRY_MS = 1_000;

export class EventTail {
  readonly #open: () => Redis;
  readonly #prefix: string;
  readonly #listeners = new Set<EventListener>();
  #running: { connection: Redis; position: Promise<string> } | undefined;
  #closed = false;

  constructor(open: () => Redis, prefix: string) {
    this.#open = open;
    this.#prefix = prefix;
  }

  /**
   * Resolves once the position is fixed: every event published after that reaches `listener`
   * (and maybe a few from just before). Returns the unsubscribe function.
   */
  async subscribe(listener: EventListener): Promise<() => void> {
    if (this.#closed) throw new Error('the producer is closed');
    this.#listeners.add(listener);
    const unsubscribe = () => void this.#listeners.delete(listener);
    try {
      if (!this.#running) this.#start();
      await this.#running?.position;
    } catch (error) {
      unsubscribe();
      throw error;
    }
    return unsubscribe;
  }

  close(): void {
    this.#closed = true;
    this.#listeners.clear();
    this.#running?.connection.disconnect();
    this.#running = undefined;
  }

  #start(): void {
    const connection = this.#open();
    const position = lastEventId(connection, this.#prefix);
    const running = { connection, position };
    this.#running = running;
    position.then(
      (from) => void this.#follow(running, from),
      () => this.#stop(running),
    );
  }

  async #follow(running: { connection: Redis }, from: string): Promise<void> {
    let lastId = from;
    while (this.#running === running && this.#listeners.size > 0) {
      try {
        const read = await readEventsAfter(running.connection, this.#prefix, lastId, { count: 500, blockMs: BLOCK_MS });
        lastId = read.lastId;
        for (const { event } of read.events) for (const listener of this.#listeners) listener(event);
      } catch {
        if (this.#running !== running) return;
        await new Promise((resolve) => setTimeout(resolve, RETRY_MS));
      }
    }
    this.#stop(running);
  }

  #stop(running: { connection: Redis }): void {
    if (this.#running === running) this.#running = undefined;
    running.connection.disconnect();
  }
}
