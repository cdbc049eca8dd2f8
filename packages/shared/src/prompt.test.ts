import { describe, expect, it } from 'vitest';
import { countPromptChars, MAX_PROMPT_CHARS } from './prompt.js';

describe('countPromptChars', () => {
  it.each([
    ['', 0],
    ['a cat', 5],
    ['一只坐着的橘猫', 7],
    ['😀', 1],
    ['cat 😀 猫', 7],
    ['𠮷野家', 3], // an astral CJK character is one character too
    ['👍🏽', 2], // base emoji + skin-tone modifier are two code points
  ])('counts %j as %i characters', (prompt, expected) => {
    expect(countPromptChars(prompt)).toBe(expected);
  });

  it('counts an emoji once where UTF-16 length counts it twice', () => {
    const prompt = '😀'.repeat(MAX_PROMPT_CHARS);
    expect(prompt.length).toBe(2 * MAX_PROMPT_CHARS);
    expect(countPromptChars(prompt)).toBe(MAX_PROMPT_CHARS);
  });

  it('allows 800 characters', () => {
    expect(MAX_PROMPT_CHARS).toBe(800);
  });
});
