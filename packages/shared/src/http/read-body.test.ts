import { Readable } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { declaredLength, glimpseBody, readCappedBody } from './read-body.js';

/** A body of `chunks`, then (optionally) a failure, like a connection reset mid-body. */
function body(chunks: string[], failWith?: Error): Readable {
  let i = 0;
  return new Readable({
    read() {
      if (i < chunks.length) this.push(Buffer.from(chunks[i++] as string));
      else if (failWith) this.destroy(failWith);
      else this.push(null);
    },
  });
}

describe('readCappedBody', () => {
  it('reads a body within the cap whole', async () => {
    expect(await readCappedBody(body(['ab', 'cd']), 4)).toEqual({ bytes: Buffer.from('abcd'), truncated: false });
  });

  it('stops at the cap, says so, and stops reading the rest', async () => {
    const stream = body(['abc', 'def', 'ghi']);
    const read = await readCappedBody(stream, 4);
    expect(read).toEqual({ bytes: Buffer.from('abcd'), truncated: true });
    expect(stream.destroyed).toBe(true);
  });

  it('throws the stream error of a body that fails part-way', async () => {
    await expect(readCappedBody(body(['ab'], Object.assign(new Error('reset'), { code: 'ECONNRESET' })), 100)).rejects.toMatchObject({ code: 'ECONNRESET' });
  });
});

describe('glimpseBody', () => {
  it('gives the first bytes of a long body', async () => {
    expect((await glimpseBody(body(['abc', 'def']), 5)).toString()).toBe('abcde');
  });

  it('gives what arrived before a failure', async () => {
    expect((await glimpseBody(body(['ab'], new Error('reset')), 100)).toString()).toBe('ab');
  });
});

describe('declaredLength', () => {
  it.each([
    [{ 'content-length': '42' }, 42],
    [{ 'content-length': ' 7 ' }, 7],
    [{ 'content-length': ['5', '6'] }, 5],
    [{ 'content-length': '-1' }, undefined],
    [{ 'content-length': '1e9' }, undefined],
    [{}, undefined],
  ])('reads %o as %s', (headers, expected) => {
    expect(declaredLength(headers)).toBe(expected);
  });
});
