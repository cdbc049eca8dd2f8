/**
 * Proves downloaded bytes are one whole PNG: signature, IHDR first, every chunk's length inside the
 * bytes and its CRC-32 right, IEND last. A header check alone let a truncated body (a 200-byte
 * slice served with a matching Content-Length) be stored as a success; a truncation or a flipped
 * byte anywhere breaks a length or a CRC here.
 *
 * Not a decoder: inflating the IDAT stream would cost far more than the download, and the CRCs
 * already catch damage. The walk reads lengths and computes CRCs over subarrays, never copying, so
 * a multi-megabyte image costs one pass of `zlib.crc32`.
 */
import { crc32 } from 'node:zlib';

export type PngStructure =
  | { readonly ok: true; readonly width: number; readonly height: number }
  | { readonly ok: false; readonly reason: string };

const PNG_SIGNATURE = Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]);
/** Length (4) + type (4) before the data, CRC (4) after it. */
const CHUNK_OVERHEAD = 12;
const IHDR_LENGTH = 13;
/** The PNG spec caps chunk lengths (and image dimensions) at 2^31 − 1. */
const MAX_PNG_INT = 0x7fffffff;

export function checkPngStructure(bytes: Uint8Array): PngStructure {
  const buffer = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  if (buffer.length < PNG_SIGNATURE.length || !buffer.subarray(0, PNG_SIGNATURE.length).equals(PNG_SIGNATURE)) {
    return fail('no PNG signature');
  }

  let size: { width: number; height: number } | undefined;
  let sawIdat = false;
  let offset = PNG_SIGNATURE.length;
  while (offset < buffer.length) {
    if (buffer.length - offset < 8) return fail(`truncated in a chunk header at byte ${buffer.length}`);
    const length = buffer.readUInt32BE(offset);
    const type = buffer.toString('latin1', offset + 4, offset + 8);
    if (!/^[A-Za-z]{4}$/.test(type)) return fail(`bad chunk type at byte ${offset}`);
    if (length > MAX_PNG_INT) return fail(`chunk ${type} at byte ${offset} declares ${length} bytes`);
    const end = offset + CHUNK_OVERHEAD + length;
    if (end > buffer.length) return fail(`truncated in chunk ${type} at byte ${buffer.length}`);
    const dataStart = offset + 8;
    // The CRC covers the type and the data, not the length.
    if (crc32(buffer.subarray(offset + 4, dataStart + length)) !== buffer.readUInt32BE(dataStart + length)) {
      return fail(`bad CRC in chunk ${type} at byte ${offset}`);
    }

    if (size === undefined) {
      if (type !== 'IHDR') return fail(`first chunk is ${type}, not IHDR`);
      if (length !== IHDR_LENGTH) return fail(`IHDR is ${length} bytes, not ${IHDR_LENGTH}`);
      const width = buffer.readUInt32BE(dataStart);
      const height = buffer.readUInt32BE(dataStart + 4);
      if (width === 0 || height === 0 || width > MAX_PNG_INT || height > MAX_PNG_INT) {
        return fail(`IHDR size ${width}×${height} is invalid`);
      }
      size = { width, height };
    } else if (type === 'IHDR') {
      return fail(`second IHDR at byte ${offset}`);
    } else if (type === 'IDAT') {
      sawIdat = true;
    } else if (type === 'IEND') {
      if (!sawIdat) return fail('no IDAT before IEND');
      if (!isZeroPadding(buffer.subarray(end))) return fail(`${buffer.length - end} bytes after IEND`);
      return { ok: true, ...size };
    }
    offset = end;
  }
  return fail(size === undefined ? 'no IHDR' : 'no IEND');
}

/**
 * Decoders stop at IEND, so zero padding after it is harmless and tolerated. Any other byte means
 * the body is more than the PNG we paid for (two bodies run together, say), so it is refused.
 */
function isZeroPadding(rest: Buffer): boolean {
  for (const byte of rest) if (byte !== 0) return false;
  return true;
}

function fail(reason: string): PngStructure {
  return { ok: false, reason };
}
