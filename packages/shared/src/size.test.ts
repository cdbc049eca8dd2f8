import { describe, expect, it } from 'vitest';
import {
  ASPECTS,
  checkPixels,
  DEFAULT_SIZE,
  formatSize,
  MAX_PIXELS,
  MIN_PIXELS,
  parseSize,
  RECOMMENDED_SIZES,
  recommendedSize,
  TIERS,
} from './size.js';

describe('parseSize', () => {
  it.each([
    ['1024*1536', 1024, 1536],
    ['1024x1536', 1024, 1536],
    ['1024X1536', 1024, 1536],
    [' 1024 * 1536 ', 1024, 1536],
    ['1536*1024', 1536, 1024],
  ])('accepts %j as %i×%i', (text, width, height) => {
    expect(parseSize(text)).toEqual({ width, height });
  });

  it.each([
    ['512*512', 512, 512],
    ['2048*2048', 2048, 2048],
    ['1152*2048', 1152, 2048],
    ['2048*1152', 2048, 1152],
    ['256*1024', 256, 1024], // exactly 512² pixels: no per-side rule is documented
  ])('accepts the pixel-count bound %j', (text, width, height) => {
    expect(parseSize(text)).toEqual({ width, height });
  });

  it.each(['1024', 'a*b', '1024*', '*1024', '1024*1536*2', '-512*512', '1024.5*1024', '', '1024 1536'])(
    'rejects the malformed %j with a sentence that shows the expected form',
    (text) => {
      const result = parseSize(text);
      expect(typeof result).toBe('string');
      expect(result).toContain('W*H');
    },
  );

  it.each([
    ['0*1024', 'positive integers'],
    ['511*512', 'between 512×512'],
    ['2048*2049', 'between 512×512'],
    ['4096*4096', 'between 512×512'],
  ])('rejects the out-of-range %j', (text, reason) => {
    const result = parseSize(text);
    expect(typeof result).toBe('string');
    expect(result).toContain(reason);
  });

  it('names the pixel count of a rejected size', () => {
    expect(parseSize('511*512')).toContain(String(511 * 512));
  });
});

describe('checkPixels', () => {
  it('accepts the pixel bounds themselves and refuses one pixel beyond either', () => {
    expect(checkPixels({ width: 512, height: 512 })).toBeUndefined();
    expect(checkPixels({ width: 2048, height: 2048 })).toBeUndefined();
    expect(checkPixels({ width: 1, height: MIN_PIXELS - 1 })).toMatch(/between/);
    expect(checkPixels({ width: 1, height: MAX_PIXELS + 1 })).toMatch(/between/);
  });

  it.each([
    { width: 1.5, height: 1024 },
    { width: 1024, height: Number.NaN },
    { width: -1024, height: -1024 },
  ])('refuses non-positive or non-integer sides %o', (size) => {
    expect(checkPixels(size)).toBe('width and height must be positive integers');
  });
});

describe('RECOMMENDED_SIZES', () => {
  const entries = ASPECTS.flatMap((aspect) => TIERS.map((tier) => [aspect, tier, RECOMMENDED_SIZES[aspect][tier]] as const));

  it('has an entry for every aspect and tier', () => {
    expect(entries).toHaveLength(7 * 3);
  });

  it.each(entries)('%s at tier %s (%s) parses and is within the pixel range', (aspect, tier, text) => {
    const parsed = parseSize(text);
    expect(typeof parsed).toBe('object');
    expect(recommendedSize(aspect, tier)).toEqual(parsed);
    const { width, height } = recommendedSize(aspect, tier);
    expect(width * height).toBeGreaterThanOrEqual(MIN_PIXELS);
    expect(width * height).toBeLessThanOrEqual(MAX_PIXELS);
  });

  it.each(entries)('%s at tier %s keeps the orientation of its aspect ratio', (aspect, tier) => {
    const [w, h] = aspect.split(':').map(Number) as [number, number];
    const { width, height } = recommendedSize(aspect, tier);
    expect(Math.sign(width - height)).toBe(Math.sign(w - h));
    expect(width / height).toBeCloseTo(w / h, 1);
  });
});

describe('recommendedSize', () => {
  it('gives the API default 1024×1536 for 2:3 at tier 1280', () => {
    expect(recommendedSize('2:3', '1280')).toEqual({ width: 1024, height: 1536 });
    expect(recommendedSize('2:3', '1280')).toEqual(DEFAULT_SIZE);
  });

  it('uses tier 1280 when no tier is given', () => {
    expect(recommendedSize('16:9')).toEqual({ width: 1536, height: 864 });
  });
});

describe('formatSize', () => {
  it('writes the W*H form the API takes, which parses back to the same size', () => {
    expect(formatSize({ width: 1280, height: 720 })).toBe('1280*720');
    expect(parseSize(formatSize({ width: 1280, height: 720 }))).toEqual({ width: 1280, height: 720 });
  });
});
