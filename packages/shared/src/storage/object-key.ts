import { AppError } from '../errors.js';

/** S3's limit for a whole object key; we apply it to the relative key as well. */
export const MAX_OBJECT_KEY_BYTES = 1024;

/** Stable names for each rule, returned in `details.rule` so callers and tests can match on them. */
export type ObjectKeyRule =
  | 'empty'
  | 'too-long'
  | 'control-character'
  | 'not-well-formed'
  | 'leading-separator'
  | 'drive-prefix'
  | 'backslash'
  | 'empty-segment'
  | 'dot-segment';

// U+0000–U+001F and U+007F. A NUL truncates paths in C APIs; newlines break logs and headers.
const CONTROL_CHARACTER = /[\u0000-\u001f\u007f]/;
// With the `u` flag a surrogate class only matches *unpaired* surrogates, which have no UTF-8 form.
const LONE_SURROGATE = /[\ud800-\udfff]/u;
const DRIVE_PREFIX = /^[A-Za-z]:/;

/**
 * Returns `key` unchanged when it is a safe relative object key, and throws `STORAGE_KEY_INVALID`
 * naming the broken rule otherwise.
 *
 * The same key must mean the same object on every driver, so the rules are those of the strictest
 * one (a POSIX or Windows folder): a key that could climb out of the folder or prefix (`..`,
 * absolute paths, drive letters, backslashes read as separators on Windows) is refused rather
 * than normalised, because normalising would silently write somewhere the caller did not name.
 */
export function assertSafeObjectKey(key: string): string {
  const broken = findBrokenRule(key);
  if (broken !== undefined) {
    throw new AppError('STORAGE_KEY_INVALID', `Object key ${describeKey(key)} is invalid: ${broken.message}`, {
      details: { key: truncate(key), rule: broken.rule },
    });
  }
  return key;
}

function findBrokenRule(key: string): { rule: ObjectKeyRule; message: string } | undefined {
  if (typeof key !== 'string' || key.length === 0) return { rule: 'empty', message: 'it must not be empty' };
  if (CONTROL_CHARACTER.test(key)) {
    return { rule: 'control-character', message: 'it must not contain NUL or other control characters (U+0000–U+001F, U+007F)' };
  }
  if (LONE_SURROGATE.test(key)) return { rule: 'not-well-formed', message: 'it must be well-formed Unicode (it has an unpaired surrogate)' };
  const bytes = Buffer.byteLength(key, 'utf8');
  if (bytes > MAX_OBJECT_KEY_BYTES) {
    return { rule: 'too-long', message: `it must be at most ${MAX_OBJECT_KEY_BYTES} UTF-8 bytes (got ${bytes})` };
  }
  if (key.startsWith('/') || key.startsWith('\\')) {
    return { rule: 'leading-separator', message: 'it must be relative (no leading "/" or "\\")' };
  }
  if (DRIVE_PREFIX.test(key)) return { rule: 'drive-prefix', message: 'it must not start with a Windows drive prefix such as "C:"' };
  if (key.includes('\\')) return { rule: 'backslash', message: 'it must not contain "\\" (use "/" between folders)' };
  for (const segment of key.split('/')) {
    if (segment === '') return { rule: 'empty-segment', message: 'it must not contain empty segments ("a//b" or a trailing "/")' };
    if (segment === '.' || segment === '..') return { rule: 'dot-segment', message: 'it must not contain "." or ".." segments' };
  }
  return undefined;
}

/** JSON quoting makes control characters visible in the message instead of corrupting the log line. */
function describeKey(key: unknown): string {
  return typeof key === 'string' ? JSON.stringify(truncate(key)) : String(key);
}

function truncate(key: unknown): unknown {
  return typeof key === 'string' && key.length > 200 ? `${key.slice(0, 200)}…` : key;
}
