import { describe, expect, it } from 'vitest';
import { renderHash, whyNotCacheable } from './render-cache.js';

const base = { prompt: 'a vase', width: 512, height: 512, seed: 7, promptExtend: false };

describe('renderHash', () => {
  it('is the same for the same determined request, and differs for any field that changes the image', () => {
    const hash = renderHash(base);
    expect(hash).toMatch(/^[0-9a-f]{64}$/);
    expect(renderHash({ ...base })).toBe(hash);
    for (const change of [{ prompt: 'a vase ' }, { width: 768 }, { height: 768 }, { seed: 8 }]) expect(renderHash({ ...base, ...change })).not.toBe(hash);
  });

  it('cannot be forged by moving text between fields', () => {
    expect(renderHash({ ...base, prompt: 'a", 512' })).not.toBe(renderHash({ ...base, prompt: 'a' }));
  });

  it('is undefined for a request that does not determine its image', () => {
    expect(renderHash({ ...base, seed: undefined })).toBeUndefined();
    expect(renderHash({ ...base, promptExtend: true })).toBeUndefined();
    expect(whyNotCacheable(base)).toBeUndefined();
  });
});
