/**
 * The one capped, streaming reader of response bodies, for every outbound request: a server,
 * misbehaving or hostile, can make us neither buffer nor wait for more than we chose to read.
 */

/** What undici's `request` and Node's streams give as a body. */
export interface ResponseBody extends AsyncIterable<unknown> {
  on(event: 'error', listener: () => void): unknown;
  destroy(): unknown;
}

export interface CappedBody {
  bytes: Buffer;
  /** More than `maxBytes` arrived; `bytes` is the first `maxBytes` and the rest was not read. */
  truncated: boolean;
}

/**
 * Reads at most `maxBytes`, then stops reading (the connection is dropped, not drained). Errors of
 * the stream (a reset, a body timeout) are thrown: classify them with `classifyNetworkError`.
 */
export async function readCappedBody(body: ResponseBody, maxBytes: number): Promise<CappedBody> {
  const parts: Buffer[] = [];
  let size = 0;
  let truncated = false;
  for await (const chunk of body) {
    const buffer = typeof chunk === 'string' ? Buffer.from(chunk) : (chunk as Buffer);
    const room = maxBytes - size;
    if (buffer.length > room) {
      parts.push(buffer.subarray(0, room));
      size += room;
      truncated = true;
      break;
    }
    parts.push(buffer);
    size += buffer.length;
  }
  // Whatever is left unread is dropped (a no-op once the body has ended).
  discardBody(body);
  return { bytes: Buffer.concat(parts, size), truncated };
}

/**
 * The first `maxBytes` of a body we only want a glimpse of (an error document, a receiver's
 * answer): a body that fails part-way gives what arrived before.
 */
export async function glimpseBody(body: ResponseBody, maxBytes: number): Promise<Buffer> {
  const parts: Buffer[] = [];
  let size = 0;
  try {
    for await (const chunk of body) {
      const buffer = typeof chunk === 'string' ? Buffer.from(chunk) : (chunk as Buffer);
      const room = maxBytes - size;
      parts.push(buffer.length > room ? buffer.subarray(0, room) : buffer);
      size += Math.min(buffer.length, room);
      if (size >= maxBytes) break;
    }
  } catch {
    // Only a glimpse was wanted: a reset or timeout mid-body leaves what we have.
  }
  discardBody(body);
  return Buffer.concat(parts, size);
}

/** Stops reading a body; the abort it causes is expected, not an unhandled error. */
export function discardBody(body: Pick<ResponseBody, 'on' | 'destroy'>): void {
  body.on('error', () => {});
  body.destroy();
}

/** A `Content-Length` that parses as a whole number, else undefined (absent, chunked, garbage). */
export function declaredLength(headers: Record<string, string | string[] | undefined>): number | undefined {
  const value = headers['content-length'];
  const text = Array.isArray(value) ? value[0] : value;
  return text !== undefined && /^\d+$/.test(text.trim()) ? Number(text) : undefined;
}
