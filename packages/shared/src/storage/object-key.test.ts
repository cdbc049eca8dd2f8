import { describe, expect, it } from 'vitest';
import { isAppError } from '../errors.js';
import { assertSafeObjectKey } from './object-key.js';
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
    'x'.repeat(1024),
    '界'.repeat(341), // 1023 UTF-8 bytes
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
  ];

  it.each(rejected)('rejects %s (%j) with rule %s', (_label, key, rule) => {
    expect(ruleBrokenBy(key)).toBe(rule);
  });

  it('names the rule in the message and quotes control characters visibly', () => {
    expect(() => assertSafeObjectKey('a\u0000b')).toThrow(/invalid: .*control characters/);
    expect(() => assertSafeObjectKey('a\u0000b')).toThrow('"a\\u0000b"');
    expect(() => assertSafeObjectKey('../x')).toThrow(/"\." or "\.\." segments/);
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
