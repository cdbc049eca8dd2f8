/**
 * The items of a JSON array body, one at a time, as the bytes arrive: an upload is never parsed
 * (or held) whole, so memory per upload is one item plus one chunk, whatever the body's size.
 *
 * Written by hand rather than with a streaming JSON library: the scan only needs to find where
 * each top-level item ends (strings, escapes and nesting depth), each item is then parsed by
 * `JSON.parse` (so what is accepted is exactly JSON), and an item over `maxItemBytes` is refused
 * before it is buffered — the libraries we looked at (stream-json, @streamparser/json) build
 * values of any size and offer no such cap.
 */
import { AppError } from '@zimage/shared';

const OPEN_BRACKET = 0x5b; // [
const CLOSE_BRACKET = 0x5d; // ]
const OPEN_BRACE = 0x7b; // {
const CLOSE_BRACE = 0x7d; // }
const QUOTE = 0x22;
const BACKSLASH = 0x5c;
const COMMA = 0x2c;

export interface JsonArrayOptions {
  /** Largest item, in bytes of its JSON text. */
  maxItemBytes: number;
}

/**
 * Deepest nesting inside an item. A job request needs 3 (metadata, webhook.events); a few KiB of
 * `[[[[…` would otherwise parse, then overflow the stack of whatever walks it next.
 */
export const MAX_ITEM_DEPTH = 32;

/** Whitespace as JSON defines it: space, tab, line feed, carriage return. */
function isWhitespace(byte: number): boolean {
  return byte === 0x20 || byte === 0x09 || byte === 0x0a || byte === 0x0d;
}

const invalid = (message: string) => new AppError('REQUEST_INVALID', `body: ${message}`);

/**
 * Yields each item of the JSON array that `chunks` spell. Throws REQUEST_INVALID when the body is
 * not one JSON array (naming the item whose text is not JSON), PAYLOAD_TOO_LARGE for an item over
 * the cap. Quotes, brackets and commas are ASCII and never occur inside a multi-byte UTF-8
 * sequence, so the scan works on bytes.
 */
export async function* jsonArrayItems(chunks: AsyncIterable<Buffer | string> | Iterable<Buffer | string>, options: JsonArrayOptions): AsyncGenerator<unknown> {
  type State = 'before-array' | 'before-item' | 'in-item' | 'after-item' | 'after-array';
  let state = 'before-array' as State;
  let index = 0;
  let depth = 0; // nesting inside the current item
  let inString = false;
  let escaped = false;
  let parts: Buffer[] = [];
  let itemBytes = 0;

  const finishItem = (): unknown => {
    const text = Buffer.concat(parts, itemBytes).toString('utf8');
    parts = [];
    itemBytes = 0;
    try {
      return JSON.parse(text) as unknown;
    } catch {
      throw invalid(`item ${index} is not valid JSON`);
    }
  };

  let first = true;
  for await (const chunk of chunks) {
    let bytes = typeof chunk === 'string' ? Buffer.from(chunk) : chunk;
    // A UTF-8 byte order mark before the array, as some editors and Windows tools write it.
    if (first && bytes.length > 0) {
      first = false;
      if (bytes[0] === 0xef && bytes[1] === 0xbb && bytes[2] === 0xbf) bytes = bytes.subarray(3);
    }
    let start = state === 'in-item' ? 0 : -1; // where the current item's bytes begin in this chunk
    const items: unknown[] = [];
    for (let i = 0; i < bytes.length; i += 1) {
      const byte = bytes[i] as number;
      if (state === 'in-item') {
        if (inString) {
          if (escaped) escaped = false;
          else if (byte === BACKSLASH) escaped = true;
          else if (byte === QUOTE) inString = false;
          continue;
        }
        if (byte === QUOTE) inString = true;
        else if (byte === OPEN_BRACKET || byte === OPEN_BRACE) {
          depth += 1;
          if (depth > MAX_ITEM_DEPTH) throw invalid(`item ${index} is nested more than ${MAX_ITEM_DEPTH} levels deep`);
        }
        else if (depth > 0 && (byte === CLOSE_BRACKET || byte === CLOSE_BRACE)) depth -= 1;
        else if (depth === 0 && (byte === COMMA || byte === CLOSE_BRACKET)) {
          take(bytes, start, i);
          start = -1;
          items.push(finishItem());
          index += 1;
          state = byte === COMMA ? 'before-item' : 'after-array';
        }
        continue;
      }
      if (isWhitespace(byte)) continue;
      if (state === 'before-array') {
        if (byte !== OPEN_BRACKET) throw invalid('must be a JSON array of job requests');
        state = 'before-item';
      } else if (state === 'before-item') {
        if (byte === CLOSE_BRACKET) {
          // `[]` is an empty array; `[1,]` is a trailing comma, which JSON does not allow.
          if (index > 0) throw invalid(`item ${index} is missing after a comma`);
          state = 'after-array';
          continue;
        }
        if (byte === COMMA) throw invalid(`item ${index} is missing before a comma`);
        state = 'in-item';
        start = i;
        depth = 0;
        inString = byte === QUOTE;
        escaped = false;
        if (byte === OPEN_BRACKET || byte === OPEN_BRACE) depth = 1;
      } else {
        // after-array: only whitespace may follow
        throw invalid('must be one JSON array (text follows its closing bracket)');
      }
    }
    if (state === 'in-item') take(bytes, start, bytes.length);
    yield* items;
  }
  if (state === 'before-array') throw invalid('must be a JSON array of job requests');
  if (state !== 'after-array') throw invalid(`ends inside item ${index} (the array is not closed)`);

  function take(bytes: Buffer, from: number, to: number): void {
    if (from < 0 || to <= from) return;
    itemBytes += to - from;
    if (itemBytes > options.maxItemBytes) throw new AppError('PAYLOAD_TOO_LARGE', `body: item ${index} is over ${options.maxItemBytes} bytes`);
    parts.push(bytes.subarray(from, to));
  }
}
