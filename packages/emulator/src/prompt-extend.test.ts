import { describe, expect, it } from 'vitest';
import { estimateTokens, extendPrompt } from './prompt-extend.js';

describe('extendPrompt', () => {
  it('keeps the prompt, adds English phrases and is deterministic', () => {
    const a = extendPrompt('A red fox in the snow.');
    expect(a.text.startsWith('A red fox in the snow, ')).toBe(true);
    expect(a.text.endsWith('.')).toBe(true);
    expect(a.text).not.toMatch(/[\u4e00-\u9fff]/);
    expect(a.reasoning).toContain('A red fox in the snow');
    expect(extendPrompt('A red fox in the snow.')).toEqual(a);
    expect(extendPrompt('A blue fox in the snow.').text).not.toBe(a.text.replace('red', 'blue'));
  });

  it('answers Chinese prompts in Chinese', () => {
    const e = extendPrompt('一只坐着的橘猫。');
    expect(e.text).toMatch(/^一只坐着的橘猫，[^a-z]+。$/);
    expect(e.reasoning).toContain('一只坐着的橘猫');
  });

  it('reports token counts that add up', () => {
    const e = extendPrompt('a cat');
    expect(e.inputTokens).toBeGreaterThan(0);
    expect(e.reasoningTokens).toBeGreaterThan(0);
    expect(e.outputTokens).toBe(estimateTokens(e.text) + e.reasoningTokens);
  });

  it('estimates one token per CJK character and one per four other characters', () => {
    expect(estimateTokens('猫狗')).toBe(2);
    expect(estimateTokens('abcdefgh')).toBe(2);
    expect(estimateTokens('')).toBe(0);
  });
});
