
import { PNG } from 'pngjs';
import { describe, expect, it } from 'vitest';
import { renderPng, stampPng } from './png.js';

const key = { promptHash: '0123456789abcdef', seed: 42, width: 640, height: 480 };

describe('renderPng', () => {
  it('renders a decodable RGB PNG of exactly the requested size', () => {
    const png = renderPng(key);
    const decoded = PNG.sync.read(png);
    expect(decoded.width).toBe(640);
    expect(decoded.height).toBe(480);
    expect(decoded.colorType).toBe(2);
    // Not a blank canvas: the pixels vary.
    const distinct = new Set<number>();
    for (let i = 0; i < decoded.data.length; i += 4 * 97) distinct.add(decoded.data.readUInt32BE(i));
    expect(distinct.size).toBeGreaterThan(10);
  });

  it('is deterministic in the key and changes with each part of it', () => {
    const base = renderPng(key);
    expect(renderPng({ ...key }).equals(base)).toBe(true);
    expect(renderPng({ ...key, seed: 43 }).equals(base)).toBe(false);
    expect(renderPng({ ...key, promptHash: 'fedcba9876543210' }).equals(base)).toBe(false);
    expect(renderPng({ ...key, width: 480, height: 640 }).equals(base)).toBe(false);
  });

  it('renders the largest size quickly', () => {
    const started = performance.now();
    const png = renderPng({ ...key, width: 2048, height: 2048 });
    expect(png.readUInt32BE(16)).toBe(2048);
    expect(performance.now() - started).toBeLessThan(2000);
  });
});

describe('stampPng', () => {
  it('keeps a decodable PNG with the same pixels and makes each image id distinct bytes', () => {
    const template = renderPng(key);
    const a = stampPng(template, 'image-a');
    const b = stampPng(template, 'image-b');
    expect(a.equals(b)).toBe(false);
    expect(stampPng(template, 'image-a').equals(a)).toBe(true);
    const decoded = PNG.sync.read(a);
    expect(decoded.width).toBe(640);
    expect(decoded.height).toBe(480);
    expect(decoded.data.equals(PNG.sync.read(template).data)).toBe(true);
    expect(a.subarray(-12).equals(template.subarray(-12))).toBe(true);
    expect(a.includes(Buffer.from('zimage-image\0image-a', 'latin1'))).toBe(true);
  });
});
