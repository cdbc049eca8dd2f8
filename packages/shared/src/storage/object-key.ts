import { AppError } from '../errors.js';

/** S3's limit for a whole object key; we apply it to the relative key as well. */
export const MAX_OBJECT_KEY_BYTES = 1024;

/**
 * NAME_MAX of the filesystems a `file:` folder lives on (ext4, XFS, APFS, NTFS): one folder or
 * file name, i.e. one `/`-separated segment. S3 has no such limit, but a key must mean the same
 * object on every driver, so S3 keys obey it too.
 */
export const MAX_KEY_SEGMENT_BYTES = 255;

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
  | 'dot-segment'
  | 'segment-too-long';

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
 * Likewise no segment may be longer than a file name can be, although S3 would store it.
 *
 * These rules need no knowledge of the store; what the configured folder or S3 prefix takes from
 * the room left is checked by `assertKeyFitsStorage` (storage-key-limits.ts).
 */
export function assertSafeObjectKey(key: string): string {
  const broken = findBrokenRule(key);
  if (broken !== undefined) {
    // The rule's name is in the message too: a batch row's issue carries only the message.
    throw new AppError('STORAGE_KEY_INVALID', `Object key ${describeKey(key)} is invalid: ${broken.message} (rule ${broken.rule})`, {
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
  const segments = key.split('/');
  for (const [index, segment] of segments.entries()) {
    if (segment === '') return { rule: 'empty-segment', message: 'it must not contain empty segments ("a//b" or a trailing "/")' };
    if (segment === '.' || segment === '..') return { rule: 'dot-segment', message: 'it must not contain "." or ".." segments' };
    const segmentBytes = Buffer.byteLength(segment, 'utf8');
    if (segmentBytes > MAX_KEY_SEGMENT_BYTES) {
      return {
        rule: 'segment-too-long',
        message:
          `each "/"-separated segment must be at most ${MAX_KEY_SEGMENT_BYTES} UTF-8 bytes, the longest file name a filesystem allows ` +
          `(segment ${index + 1} of ${segments.length} is ${segmentBytes} bytes)`,
      };
    }
  }
  return undefined;
}

/** JSON quoting makes control characters visible in the message instead of corrupting the log line. */
export function describeKey(key: unknown): string {
  return typeof key === 'string' ? JSON.stringify(truncate(key)) : String(key);
}

function truncate(key: unknown): unknown {
  return typeof key === 'string' && key.length > 200 ? `${key.slice(0, 200)}…` : key;
}
