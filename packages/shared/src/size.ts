/**
 * Image size rules of z-image-turbo (reference/dashscope-api.md §1.2–1.3).
 *
 * The API takes `"W*H"`; total pixels must lie in [512², 2048²]. No per-side or multiple-of-N rule is
 * documented, so none is enforced here: the emulator is strict about what is documented, and so are we.
 */

export const MIN_PIXELS = 512 * 512;
export const MAX_PIXELS = 2048 * 2048;
export const DEFAULT_SIZE = { width: 1024, height: 1536 } as const;

export interface ImageSize {
  width: number;
  height: number;
}

/** The official recommended sizes, by aspect ratio and tier (≈1024², ≈1280², ≈1536²). */
export const RECOMMENDED_SIZES = {
  '1:1': { '1024': '1024*1024', '1280': '1280*1280', '1536': '1536*1536' },
  '2:3': { '1024': '832*1248', '1280': '1024*1536', '1536': '1248*1872' },
  '3:2': { '1024': '1248*832', '1280': '1536*1024', '1536': '1872*1248' },
  '3:4': { '1024': '864*1152', '1280': '1104*1472', '1536': '1296*1728' },
  '4:3': { '1024': '1152*864', '1280': '1472*1104', '1536': '1728*1296' },
  '9:16': { '1024': '720*1280', '1280': '864*1536', '1536': '1152*2048' },
  '16:9': { '1024': '1280*720', '1280': '1536*864', '1536': '2048*1152' },
} as const;

export type Aspect = keyof typeof RECOMMENDED_SIZES;
export type Tier = '1024' | '1280' | '1536';
export const ASPECTS = Object.keys(RECOMMENDED_SIZES) as Aspect[];
export const TIERS: readonly Tier[] = ['1024', '1280', '1536'];

const SIZE_PATTERN = /^\s*(\d{1,5})\s*[*xX×]\s*(\d{1,5})\s*$/;

/**
 * Parses `"W*H"` (also `WxH`). Returns the size or a sentence saying which rule failed.
 */
export function parseSize(text: string): ImageSize | string {
  const match = SIZE_PATTERN.exec(text);
  if (!match) return `must look like "W*H" (for example "1024*1536"), got "${text}"`;
  const width = Number(match[1]);
  const height = Number(match[2]);
  return checkPixels({ width, height }) ?? { width, height };
}

/** Returns why a size is out of range, or undefined when it is fine. */
export function checkPixels({ width, height }: ImageSize): string | undefined {
  if (!Number.isInteger(width) || !Number.isInteger(height) || width < 1 || height < 1) {
    return 'width and height must be positive integers';
  }
  const pixels = width * height;
  if (pixels < MIN_PIXELS || pixels > MAX_PIXELS) {
    return `total pixels ${width}×${height} = ${pixels} must be between 512×512 (${MIN_PIXELS}) and 2048×2048 (${MAX_PIXELS})`;
  }
  return undefined;
}

export function recommendedSize(aspect: Aspect, tier: Tier = '1280'): ImageSize {
  const parsed = parseSize(RECOMMENDED_SIZES[aspect][tier]);
  if (typeof parsed === 'string') throw new Error(`recommended size table is broken: ${parsed}`);
  return parsed;
}

export function formatSize({ width, height }: ImageSize): string {
  return `${width}*${height}`;
}
