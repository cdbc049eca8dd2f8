import { createHash } from 'node:crypto';
import { crc32 } from 'node:zlib';
import { PNG } from 'pngjs';
import type { ImageKey } from './image-key.js';
import { Prng } from './prng.js';

const BYTES_PER_PIXEL = 3;

/**
 * Renders the image for `key` as a real RGB PNG of exactly width×height: a diagonal gradient
 * between two colours plus a few solid blocks, all derived from the key. Same key, same bytes —
 * that is what lets downloads regenerate images instead of storing them.
 *
 * Speed matters more than size (a 2048×2048 image is rendered on every uncached download), hence
 * deflate level 1 and the single "Sub" filter, which also compresses this pattern well.
 */
export function renderPng(key: ImageKey): Buffer {
  const { width, height } = key;
  const rng = new Prng(patternSeed(key));
  const from = randomColour(rng);
  const to = randomColour(rng);
  const data = Buffer.allocUnsafe(width * height * BYTES_PER_PIXEL);

  const xScale = 0.5 / Math.max(1, width - 1);
  const yScale = 0.5 / Math.max(1, height - 1);
  let i = 0;
  for (let y = 0; y < height; y++) {
    const ty = y * yScale;
    for (let x = 0; x < width; x++) {
      const t = x * xScale + ty;
      data[i++] = from[0] + (to[0] - from[0]) * t;
      data[i++] = from[1] + (to[1] - from[1]) * t;
      data[i++] = from[2] + (to[2] - from[2]) * t;
    }
  }

  const blocks = rng.intBetween(3, 6);
  for (let b = 0; b < blocks; b++) {
    const w = rng.intBetween(Math.ceil(width / 10), Math.ceil(width / 3));
    const h = rng.intBetween(Math.ceil(height / 10), Math.ceil(height / 3));
    const left = rng.intBetween(0, width - w);
    const top = rng.intBetween(0, height - h);
    const row = Buffer.alloc(w * BYTES_PER_PIXEL);
    const colour = randomColour(rng);
    for (let x = 0; x < w; x++) row.set(colour, x * BYTES_PER_PIXEL);
    for (let y = top; y < top + h; y++) row.copy(data, (y * width + left) * BYTES_PER_PIXEL);
  }

  // Not `new PNG({ width, height })`: that would allocate an unused RGBA buffer.
  const png = new PNG();
  png.width = width;
  png.height = height;
  png.data = data;
  return PNG.sync.write(png, {
    colorType: 2,
    inputColorType: 2,
    inputHasAlpha: false,
    bitDepth: 8,
    deflateLevel: 1,
    filterType: 1,
  });
}

function patternSeed(key: ImageKey): number {
  const digest = createHash('sha256').update(`${key.promptHash}:${key.seed}:${key.width}x${key.height}`).digest();
  return digest.readUInt32BE(0);
}

function randomColour(rng: Prng): [number, number, number] {
  return [rng.intBetween(0, 255), rng.intBetween(0, 255), rng.intBetween(0, 255)];
}

const IEND_LENGTH = 12;

/**
 * A valid PNG of `key`'s size made distinct per image at almost no CPU: `template` (one encoded
 * image of that size) with a `tEXt` chunk naming the image inserted before `IEND`. Used by the
 * emulator's `images: 'template'` mode.
 */
export function stampPng(template: Buffer, imageId: string): Buffer {
  const type = Buffer.from('tEXt', 'latin1');
  const data = Buffer.from(`zimage-image\0${imageId}`, 'latin1');
  const chunk = Buffer.alloc(12 + data.length);
  chunk.writeUInt32BE(data.length, 0);
  type.copy(chunk, 4);
  data.copy(chunk, 8);
  chunk.writeUInt32BE(crc32(data, crc32(type)), 8 + data.length);
  const body = template.subarray(0, template.length - IEND_LENGTH);
  return Buffer.concat([body, chunk, template.subarray(template.length - IEND_LENGTH)]);
}
