/**
 * What happens to the rest of a request body the API refused before reading it to the end (a bad
 * query, an item over its cap, too many items).
 *
 * Closing the connection at once, as fastify does for its own 413s, races the client: one still
 * writing its upload gets a reset, which can drop the answer it has not read yet. So the rest is
 * read and thrown away — never kept — for a bounded while, as web servers' "lingering close"
 * does: a client that finishes its body in that while keeps its connection; one that keeps
 * sending past it (or an endless body) has its connection closed, long after the answer went out.
 */
import type { IncomingMessage } from 'node:http';

export interface DrainLimits {
  /** Most bytes read and discarded before the connection is closed. */
  maxBytes: number;
  /** Longest wait for the body's end before the connection is closed. */
  maxMs: number;
}

export const REFUSED_BODY_DRAIN: DrainLimits = { maxBytes: 8 * 1024 * 1024, maxMs: 5_000 };

export function drainRefusedBody(raw: IncomingMessage, limits: DrainLimits = REFUSED_BODY_DRAIN): void {
  if (raw.complete || raw.destroyed) return;
  let drained = 0;
  const close = () => {
    clearTimeout(timer);
    raw.removeListener('data', onData);
    raw.socket?.destroy();
  };
  const onData = (chunk: Buffer) => {
    drained += chunk.length;
    if (drained > limits.maxBytes) close();
  };
  const timer = setTimeout(close, limits.maxMs);
  timer.unref();
  raw.on('data', onData);
  raw.once('end', () => clearTimeout(timer));
  raw.once('close', () => clearTimeout(timer));
  raw.resume();
}
