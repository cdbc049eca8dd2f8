import { randomBytes } from 'node:crypto';
import { crc32, deflateSync } from 'node:zlib';
import { describe, expect, it } from 'vitest';
import { checkPngStructure } from './png-structure.js';

const SIGNATURE = Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]);

function chunk(type: string, data: Buffer = Buffer.alloc(0)): Buffer {
  const head = Buffer.alloc(8);
  head.writeUInt32BE(data.length, 0);
  head.write(type, 4, 'latin1');
  const crc = Buffer.alloc(4);
  crc.writeUInt32BE(crc32(data, crc32(Buffer.from(type, 'latin1'))));
  return Buffer.concat([head, data, crc]);
}

/**
 * A real, decodable 8-bit RGB PNG (filter byte 0 on every row), built here rather than with pngjs,
 * which is not a worker dependency. `idatSize` splits the zlib stream over several IDAT chunks, as
 * encoders do; `noise` makes the pixels incompressible, so the file is as large as the image.
 */
function encodePng(width: number, height: number, options: { idatSize?: number; noise?: boolean } = {}): Buffer {
  const rowBytes = 1 + width * 3;
  const raw = options.noise ? randomBytes(rowBytes * height) : Buffer.alloc(rowBytes * height);
  for (let y = 0; y < height; y++) {
    raw[y * rowBytes] = 0;
    if (!options.noise) for (let x = 1; x < rowBytes; x++) raw[y * rowBytes + x] = (x + y) & 0xff;
  }
  const zlib = deflateSync(raw, { level: options.noise ? 0 : 6 });
  const idatSize = options.idatSize ?? zlib.length;
  const idats: Buffer[] = [];
  for (let at = 0; at < zlib.length; at += idatSize) idats.push(chunk('IDAT', zlib.subarray(at, at + idatSize)));
  const ihdr = Buffer.alloc(13);
  ihdr.writeUInt32BE(width, 0);
  ihdr.writeUInt32BE(height, 4);
  ihdr.writeUInt8(8, 8); // bit depth
  ihdr.writeUInt8(2, 9); // colour type RGB
  return Buffer.concat([SIGNATURE, chunk('IHDR', ihdr), chunk('tEXt', Buffer.from('Software\0test', 'latin1')), ...idats, chunk('IEND')]);
}

/** Byte offset of the first chunk of `type` (its length field). */
function chunkOffset(png: Buffer, type: string): number {
  const at = png.indexOf(type, 8, 'latin1') - 4;
  if (at < 8) throw new Error(`no ${type}`);
  return at;
}

// Incompressible pixels (stored deflate blocks): about 9 KB in 400-byte IDATs, so cuts land in several.
const png = encodePng(64, 48, { noise: true, idatSize: 400 });

describe('checkPngStructure', () => {
  it('accepts a whole PNG and reads its size', () => {
    expect(checkPngStructure(png)).toEqual({ ok: true, width: 64, height: 48 });
  });

  it('reads a Uint8Array view that starts inside a larger buffer', () => {
    const backing = Buffer.concat([Buffer.from('garbage-before'), png, Buffer.from('garbage-after')]);
    const view = new Uint8Array(backing.buffer, backing.byteOffset + 14, png.length);
    expect(checkPngStructure(view)).toEqual({ ok: true, width: 64, height: 48 });
  });

  it('walks a multi-megabyte PNG in one quick pass', () => {
    const big = encodePng(1024, 1024, { noise: true, idatSize: 1 << 16 });
    expect(big.length).toBeGreaterThan(3_000_000);
    const started = performance.now();
    expect(checkPngStructure(big)).toEqual({ ok: true, width: 1024, height: 1024 });
    // Generous: one CRC pass over 3 MB takes a few ms; this only catches copying or rescanning.
    expect(performance.now() - started).toBeLessThan(500);
  });

  it('accepts zero padding after IEND but not other trailing bytes', () => {
    expect(checkPngStructure(Buffer.concat([png, Buffer.alloc(16)]))).toMatchObject({ ok: true });
    expect(checkPngStructure(Buffer.concat([png, Buffer.from('<html>')]))).toEqual({ ok: false, reason: '6 bytes after IEND' });
    expect(checkPngStructure(Buffer.concat([png, png]))).toMatchObject({ ok: false, reason: `${png.length} bytes after IEND` });
  });

  it.each([
    ['inside IHDR', 20, /^truncated in chunk IHDR at byte 20$/],
    ['just after IHDR', 33, /^no IEND$/],
    ['inside the first IDAT', 200, /^truncated in chunk IDAT at byte 200$/],
    ['inside a later IDAT', 1000, /^truncated in chunk IDAT at byte 1000$/],
    ['in the middle of a chunk header', 'idat+3', /^truncated in a chunk header at byte \d+$/],
    ['before IEND', 'iend', /^no IEND$/],
    ['inside IEND', -4, /^truncated in chunk IEND at byte \d+$/],
    ['one byte short', -1, /^truncated in chunk IEND at byte \d+$/],
  ] as const)('refuses a PNG truncated %s', (_where, cut, reason) => {
    const end =
      cut === 'iend' ? chunkOffset(png, 'IEND') : cut === 'idat+3' ? chunkOffset(png, 'IDAT') + 3 : cut < 0 ? png.length + cut : cut;
    const result = checkPngStructure(png.subarray(0, end));
    expect(result.ok).toBe(false);
    expect(result.ok ? '' : result.reason).toMatch(reason);
  });

  it('refuses a truncation at every byte', () => {
    const accepted = [];
    for (let end = 0; end < png.length; end++) if (checkPngStructure(png.subarray(0, end)).ok) accepted.push(end);
    expect(accepted).toEqual([]);
  });

  it('refuses one flipped byte in IDAT (bad CRC)', () => {
    const damaged = Buffer.from(png);
    damaged[chunkOffset(png, 'IDAT') + 8 + 100]! ^= 0x01;
    expect(checkPngStructure(damaged)).toEqual({ ok: false, reason: `bad CRC in chunk IDAT at byte ${chunkOffset(png, 'IDAT')}` });
  });

  it('refuses a damaged CRC field', () => {
    const damaged = Buffer.from(png);
    damaged[damaged.length - 1]! ^= 0xff;
    expect(checkPngStructure(damaged)).toMatchObject({ ok: false, reason: expect.stringMatching(/^bad CRC in chunk IEND/) });
  });

  it('refuses a PNG without IEND', () => {
    const withoutIend = png.subarray(0, chunkOffset(png, 'IEND'));
    expect(checkPngStructure(withoutIend)).toEqual({ ok: false, reason: 'no IEND' });
  });

  it.each([
    ['a damaged signature', Buffer.concat([Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x00]), png.subarray(8)])],
    ['empty input', Buffer.alloc(0)],
    ['the signature cut short', SIGNATURE.subarray(0, 7)],
    ['a JPEG', Buffer.concat([Buffer.from([0xff, 0xd8, 0xff, 0xe0]), Buffer.alloc(40)])],
    ['an OSS error body', Buffer.from('<?xml version="1.0"?><Error><Code>AccessDenied</Code></Error>')],
  ])('refuses %s', (_what, bytes) => {
    expect(checkPngStructure(bytes)).toEqual({ ok: false, reason: 'no PNG signature' });
  });

  it.each([
    ['a first chunk that is not IHDR', Buffer.concat([SIGNATURE, chunk('IDAT', Buffer.alloc(13)), chunk('IEND')]), 'first chunk is IDAT, not IHDR'],
    ['a short IHDR', Buffer.concat([SIGNATURE, chunk('IHDR', Buffer.alloc(8)), chunk('IEND')]), 'IHDR is 8 bytes, not 13'],
    ['a zero-width IHDR', Buffer.concat([SIGNATURE, chunk('IHDR', Buffer.alloc(13)), chunk('IEND')]), 'IHDR size 0×0 is invalid'],
    ['no IDAT', Buffer.concat([png.subarray(0, 33), chunk('IEND')]), 'no IDAT before IEND'],
    ['the signature alone', SIGNATURE, 'no IHDR'],
    ['a second IHDR', Buffer.concat([png.subarray(0, 33), png.subarray(8)]), 'second IHDR at byte 33'],
  ])('refuses %s', (_what, bytes, reason) => {
    expect(checkPngStructure(bytes)).toEqual({ ok: false, reason });
  });

  it('refuses a chunk whose length runs past the end, without reading past it', () => {
    const huge = Buffer.from(png);
    huge.writeUInt32BE(0x7fff_ffff, chunkOffset(png, 'IDAT'));
    expect(checkPngStructure(huge)).toEqual({ ok: false, reason: `truncated in chunk IDAT at byte ${png.length}` });
    huge.writeUInt32BE(0x8000_0000, chunkOffset(png, 'IDAT'));
    expect(checkPngStructure(huge)).toMatchObject({ ok: false, reason: expect.stringMatching(/declares 2147483648 bytes$/) });
  });
});
