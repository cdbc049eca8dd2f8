import { describe, expect, it } from 'vitest';
import { readPngSize } from './png-header.js';

const SIGNATURE = [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a];

/** Signature + IHDR chunk (length, type, 13 data bytes, CRC left as zeros: only the header is read). */
function pngHeader(width: number, height: number, chunkType = 'IHDR'): Buffer {
  const ihdr = Buffer.alloc(4 + 4 + 13 + 4);
  ihdr.writeUInt32BE(13, 0);
  ihdr.write(chunkType, 4, 'latin1');
  ihdr.writeUInt32BE(width, 8);
  ihdr.writeUInt32BE(height, 12);
  ihdr.writeUInt8(8, 16); // bit depth
  ihdr.writeUInt8(6, 17); // colour type RGBA
  return Buffer.concat([Buffer.from(SIGNATURE), ihdr]);
}

describe('readPngSize', () => {
  it.each([
    [1024, 1536],
    [1664, 928],
    [1, 1],
    [0xffffffff, 0x80000000], // unsigned 32-bit, not read as negative
  ])('reads %i×%i from the IHDR chunk', (width, height) => {
    expect(readPngSize(pngHeader(width, height))).toEqual({ width, height });
  });

  it('reads a header followed by more data', () => {
    expect(readPngSize(Buffer.concat([pngHeader(1280, 720), Buffer.alloc(1000, 7)]))).toEqual({ width: 1280, height: 720 });
  });

  it('reads a Uint8Array view that starts inside a larger buffer', () => {
    const backing = Buffer.concat([Buffer.from('garbage-before'), pngHeader(832, 1248)]);
    const view = new Uint8Array(backing.buffer, backing.byteOffset + 14, backing.byteLength - 14);
    expect(readPngSize(view)).toEqual({ width: 832, height: 1248 });
  });

  it('reads exactly the first 24 bytes', () => {
    expect(readPngSize(pngHeader(512, 512).subarray(0, 24))).toEqual({ width: 512, height: 512 });
  });

  it.each([
    ['empty input', Buffer.alloc(0)],
    ['a truncated header (23 bytes)', pngHeader(512, 512).subarray(0, 23)],
    ['the signature alone', Buffer.from(SIGNATURE)],
    ['a JPEG', Buffer.concat([Buffer.from([0xff, 0xd8, 0xff, 0xe0]), Buffer.alloc(40)])],
    ['an HTML error page', Buffer.from('<?xml version="1.0"?><Error><Code>AccessDenied</Code></Error>')],
    ['a damaged signature', Buffer.concat([Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x00]), pngHeader(512, 512).subarray(8)])],
    ['a first chunk that is not IHDR', pngHeader(512, 512, 'IDAT')],
  ])('gives undefined for %s', (_what, bytes) => {
    expect(readPngSize(bytes)).toBeUndefined();
  });
});
