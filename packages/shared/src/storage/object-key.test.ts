import { describe, expect, it } from 'vitest';
import { isAppError } from '../errors.js';
import { assertSafeObjectKey, MAX_KEY_SEGMENT_BYTES } from './object-key.js';
import type { ObjectKeyRule } from './object-key.js';

function ruleBrokenBy(key: string): unknown {
  try {
    assertSafeObjectKey(key);
  } catch (error) {
    if (isAppError(error) && error.code === 'STORAGE_KEY_INVALID') return error.details['rule'];
    throw error;
  }
  return 'accepted';
}

describe('assertSafeObjectKey', () => {
  it.each([
    'a.png',
    'catalogue/sku-1.png',
    'deep/er/and/deeper/x.png',
    '.hidden.png',
    '...png',
    'a..b/c.png',
    'name with spaces.png',
    '手机壳/红色.png',
    'emoji-😀.png',
    'report-12:30.png',
    [255, 255, 255, 250, 5].map((n) => 'x'.repeat(n)).join('/'), // 1024 bytes, no segment over 255
    ['界'.repeat(85), '界'.repeat(85), '界'.repeat(85), '界'.repeat(85)].join('/'), // 1023 UTF-8 bytes
    'x'.repeat(255),
    `catalogue/${'界'.repeat(85)}`, // a 255-byte segment
    `${'😀'.repeat(63)}abc`, // 4-byte characters: 255 bytes
  ])('accepts %j and returns it unchanged', (key) => {
    expect(assertSafeObjectKey(key)).toBe(key);
  });

  const rejected: Array<[string, string, ObjectKeyRule]> = [
    ['empty', '', 'empty'],
    ['parent segment at the start', '../x', 'dot-segment'],
    ['parent segments that climb out', 'a/../../x', 'dot-segment'],
    ['a parent segment at the end', 'a/..', 'dot-segment'],
    ['a current-folder segment', 'a/./b', 'dot-segment'],
    ['a lone dot', '.', 'dot-segment'],
    ['an absolute POSIX path', '/etc/passwd', 'leading-separator'],
    ['a leading backslash', '\\server\\share', 'leading-separator'],
    ['a backslash inside', 'a\\b', 'backslash'],
    ['a backslash parent escape', 'a\\..\\..\\x', 'backslash'],
    ['an empty segment', 'a//b', 'empty-segment'],
    ['a trailing slash', 'a/', 'empty-segment'],
    ['NUL', 'a\u0000b', 'control-character'],
    ['a newline', 'a\nb.png', 'control-character'],
    ['a unit separator (U+001F)', 'a\u001fb', 'control-character'],
    ['DEL (U+007F)', 'a\u007fb', 'control-character'],
    ['a drive prefix with slash', 'C:/x', 'drive-prefix'],
    ['a drive prefix without slash', 'c:x', 'drive-prefix'],
    ['a one-letter name before a colon (drive-relative on Windows)', 'a:b.png', 'drive-prefix'],
    ['a drive prefix with backslash', 'D:\\x', 'drive-prefix'],
    ['a 1025-byte ASCII key', 'x'.repeat(1025), 'too-long'],
    ['a key of 1026 bytes in 342 CJK characters', '界'.repeat(342), 'too-long'],
    ['an unpaired surrogate', 'a\ud800b', 'not-well-formed'],
    ['a 256-byte segment', 'x'.repeat(256), 'segment-too-long'],
    ['a 256-byte folder', `${'x'.repeat(256)}/a.png`, 'segment-too-long'],
    ['86 CJK characters in a file name (258 bytes)', `catalogue/${'手'.repeat(86)}.png`, 'segment-too-long'],
    ['a segment of 64 four-byte characters (256 bytes)', '😀'.repeat(64), 'segment-too-long'],
  ];

  it.each(rejected)('rejects %s (%j) with rule %s', (_label, key, rule) => {
    expect(ruleBrokenBy(key)).toBe(rule);
  });

  it('names the rule in the message and quotes control characters visibly', () => {
    expect(() => assertSafeObjectKey('a\u0000b')).toThrow(/invalid: .*control characters/);
    expect(() => assertSafeObjectKey('a\u0000b')).toThrow('"a\\u0000b"');
    expect(() => assertSafeObjectKey('../x')).toThrow(/"\." or "\.\." segments/);
  });

  it('names segment-too-long with the segment, its byte count and the limit', () => {
    const key = `catalogue/${'手'.repeat(86)}.png`;
    expect(() => assertSafeObjectKey(key)).toThrow(
      `each "/"-separated segment must be at most ${MAX_KEY_SEGMENT_BYTES} UTF-8 bytes, the longest file name a filesystem allows (segment 2 of 2 is 262 bytes) (rule segment-too-long)`,
    );
    expect(MAX_KEY_SEGMENT_BYTES).toBe(255);
  });

  it('names the rule id at the end of every message', () => {
    expect(() => assertSafeObjectKey('a//b')).toThrow(/\(rule empty-segment\)$/);
  });

  it('throws an AppError that never retries', () => {
    try {
      assertSafeObjectKey('../x');
      expect.unreachable();
    } catch (error) {
      expect(isAppError(error) && error.retry).toBe('never');
    }
  });
});
