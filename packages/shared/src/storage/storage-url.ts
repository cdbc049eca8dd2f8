import { fileURLToPath } from 'node:url';
import { AppError } from '../errors.js';

export type ParsedStorageUrl = { kind: 'file'; dir: string } | { kind: 's3'; bucket: string; prefix: string };

// S3's naming rules for new buckets (3–63 chars, lowercase letters, digits, dots, hyphens).
const BUCKET_NAME = /^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$/;

/**
 * Parses `STORAGE_URL`:
 * - `file:./output`, `file:output` → a folder relative to the working directory (returned as
 *   written; `createStorage` resolves it against `process.cwd()`);
 * - `file:/abs/dir` → an absolute folder, taken literally (no percent-decoding);
 * - `file:///abs/dir` → a real file URL, percent-decoded (`file://localhost/...` is accepted);
 * - `s3://bucket` or `s3://bucket/some/prefix` → bucket plus a prefix without leading or trailing `/`.
 *
 * Throws `CONFIG_INVALID` naming STORAGE_URL and the rule. The URL itself is never echoed: a
 * mistyped value might carry credentials (`s3://KEY:SECRET@bucket`).
 */
export function parseStorageUrl(url: string): ParsedStorageUrl {
  if (typeof url !== 'string' || url.trim() === '') return invalid('must not be empty', 'empty');
  if (/^file:/i.test(url)) return { kind: 'file', dir: parseFileDir(url.slice('file:'.length)) };
  if (/^s3:\/\//i.test(url)) return parseS3(url.slice('s3://'.length));
  return invalid('must start with file: or s3://', 'scheme');
}

function parseFileDir(rest: string): string {
  if (rest.startsWith('//')) {
    let dir: string;
    try {
      const parsed = new URL(`file:${rest}`);
      if (parsed.search !== '' || parsed.hash !== '') return invalid('a file: URL must not have a query or fragment', 'file-query');
      dir = fileURLToPath(parsed);
    } catch (error) {
      if (error instanceof AppError) throw error;
      // fileURLToPath refuses hosts other than localhost and encoded slashes. The original error is
      // not kept as `cause`: URL errors carry the input, which is exactly what we must not echo.
      return invalid('file:// URLs must name a local absolute path, e.g. file:///var/zimage/output', 'file-url');
    }
    return dir;
  }
  if (rest === '') return invalid('file: needs a folder, e.g. file:./output or file:/var/zimage/output', 'file-empty');
  if (rest.includes('\u0000')) return invalid('the folder must not contain NUL', 'file-nul');
  return rest;
}

function parseS3(rest: string): ParsedStorageUrl {
  const slash = rest.indexOf('/');
  const bucket = slash === -1 ? rest : rest.slice(0, slash);
  const rawPrefix = slash === -1 ? '' : rest.slice(slash + 1);
  if (bucket.includes('@')) {
    return invalid('must not contain credentials; set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY instead', 's3-credentials');
  }
  if (rest.includes('?') || rest.includes('#')) return invalid('an s3:// URL must not have a query or fragment', 's3-query');
  if (bucket === '') return invalid('s3:// needs a bucket, e.g. s3://my-bucket or s3://my-bucket/images', 's3-bucket');
  if (!BUCKET_NAME.test(bucket) || bucket.includes('..')) {
    return invalid(
      `bucket "${bucket}" is not a valid S3 bucket name (3–63 characters: lowercase letters, digits, "." and "-", starting and ending with a letter or digit)`,
      's3-bucket',
    );
  }
  // Trailing slashes are tolerated (`s3://b/images/`) because people write prefixes that way;
  // everything else must already be a clean key prefix so that prefix + "/" + key stays unambiguous.
  const prefix = rawPrefix.replace(/\/+$/, '');
  if (prefix !== '') {
    const problem = prefixProblem(prefix);
    if (problem !== undefined) return invalid(`the prefix ${problem}`, 's3-prefix');
  }
  return { kind: 's3', bucket, prefix };
}

function prefixProblem(prefix: string): string | undefined {
  if (/[\u0000-\u001f\u007f]/.test(prefix)) return 'must not contain control characters';
  if (prefix.includes('\\')) return 'must not contain "\\"';
  if (Buffer.byteLength(prefix, 'utf8') > 512) return 'must be at most 512 UTF-8 bytes';
  for (const segment of prefix.split('/')) {
    if (segment === '') return 'must not start with "/" or contain empty segments ("a//b")';
    if (segment === '.' || segment === '..') return 'must not contain "." or ".." segments';
  }
  return undefined;
}

function invalid(rule: string, ruleId: string): never {
  throw new AppError('CONFIG_INVALID', `STORAGE_URL ${rule}`, {
    details: { variable: 'STORAGE_URL', rule: ruleId },
  });
}
