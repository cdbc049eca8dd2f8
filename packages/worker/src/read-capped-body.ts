/**
 * Reads at most `maxBytes` of a response body, then stops reading it. For bodies we only want a
 * glimpse of (an error document): a misbehaving server must not be able to make us buffer, or
 * wait for, an unbounded body.
 */
import { discard } from './discard-body.js';

export interface ReadableBody extends AsyncIterable<unknown> {
  on(event: 'error', listener: () => void): unknown;
  destroy(): unknown;
}

/** The first `maxBytes` (or fewer) bytes; a body that fails part-way gives what arrived before. */
export async function readCappedBody(body: ReadableBody, maxBytes: number): Promise<Buffer> {
  const parts: Buffer[] = [];
  let size = 0;
  try {
    for await (const chunk of body) {
      const buffer = chunk as Buffer;
      const room = maxBytes - size;
      parts.push(buffer.length > room ? buffer.subarray(0, room) : buffer);
      size += Math.min(buffer.length, room);
      if (size >= maxBytes) break;
    }
  } catch {
    // Only a glimpse was wanted: a reset or timeout mid-body leaves what we have.
  }
  // Whatever is left unread is dropped (a no-op once the body has ended).
  discard(body);
  return Buffer.concat(parts, size);
}
