/**
 * Opaque page cursors: a small JSON value in base64url. Callers pass back what a page returned;
 * anything else is refused with REQUEST_INVALID, never half-read.
 */
import { AppError } from '@zimage/shared';

const MAX_CURSOR_LENGTH = 512;

export function encodeCursor(value: unknown): string {
  return Buffer.from(JSON.stringify(value)).toString('base64url');
}

export function decodeCursor<T>(cursor: string, isValid: (value: unknown) => value is T): T {
  const invalid = () => new AppError('REQUEST_INVALID', 'cursor: must be a nextCursor returned by the previous page');
  if (cursor.length === 0 || cursor.length > MAX_CURSOR_LENGTH || !/^[A-Za-z0-9_-]+$/.test(cursor)) throw invalid();
  let value: unknown;
  try {
    value = JSON.parse(Buffer.from(cursor, 'base64url').toString('utf8'));
  } catch {
    throw invalid();
  }
  if (!isValid(value)) throw invalid();
  return value;
}
