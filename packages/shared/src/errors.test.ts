import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { AppError, coerceError, ERROR_CATALOGUE, isAppError, toAppError, type ErrorCode } from './errors.js';

const entries = Object.entries(ERROR_CATALOGUE) as Array<[ErrorCode, (typeof ERROR_CATALOGUE)[ErrorCode]]>;

describe('ERROR_CATALOGUE', () => {
  it.each(entries)('%s has a retry policy, a 3-digit HTTP status, a summary and an action', (code, spec) => {
    expect(code).toMatch(/^[A-Z][A-Z0-9_]*$/);
    expect(['never', 'transient', 'throttle', 'account', 'pause']).toContain(spec.retry);
    expect(Number.isInteger(spec.httpStatus)).toBe(true);
    expect(spec.httpStatus).toBeGreaterThanOrEqual(100);
    expect(spec.httpStatus).toBeLessThanOrEqual(599);
    expect(spec.summary.trim()).not.toBe('');
    expect(spec.action.trim()).not.toBe('');
  });

  it.each([
    ['REQUEST_INVALID', 'never'],
    ['UPSTREAM_CONTENT_REJECTED', 'never'],
    ['UPSTREAM_AUTH_INVALID', 'account'],
    ['UPSTREAM_BILLING', 'account'],
    ['UPSTREAM_THROTTLED', 'throttle'],
    ['UPSTREAM_INTERNAL', 'transient'],
    ['NETWORK_TIMEOUT', 'transient'],
    ['IMAGE_HOST_NOT_ALLOWED', 'pause'],
    ['IMAGE_TOO_LARGE', 'pause'],
    ['UPSTREAM_BAD_RESPONSE', 'pause'],
    ['STORAGE_WRITE_FAILED', 'transient'],
  ] as const)('%s is retried as %s', (code, retry) => {
    expect(ERROR_CATALOGUE[code].retry).toBe(retry);
  });
});

describe('AppError', () => {
  it('carries its code, the catalogue retry policy and HTTP status, details, retryAfterMs and cause', () => {
    const cause = new Error('socket hang up');
    const error = new AppError('UPSTREAM_THROTTLED', 'slow down', { cause, details: { upstreamCode: 'Throttling' }, retryAfterMs: 1500 });
    expect(error).toBeInstanceOf(Error);
    expect(error).toMatchObject({ name: 'AppError', code: 'UPSTREAM_THROTTLED', retry: 'throttle', message: 'slow down', retryAfterMs: 1500 });
    expect(error.httpStatus).toBe(503);
    expect(error.details).toEqual({ upstreamCode: 'Throttling' });
    expect(error.cause).toBe(cause);
    expect(error.stack).toContain('slow down');
  });

  it('defaults to empty details, no retryAfterMs and no cause', () => {
    const error = new AppError('INTERNAL', 'oops');
    expect(error.details).toEqual({});
    expect(error.retryAfterMs).toBeUndefined();
    expect(error.cause).toBeUndefined();
    expect('cause' in error).toBe(false);
  });

  it.each(entries.map(([code]) => code))('takes retry and httpStatus for %s from the catalogue', (code) => {
    const error = new AppError(code, 'x');
    expect(error.retry).toBe(ERROR_CATALOGUE[code].retry);
    expect(error.httpStatus).toBe(ERROR_CATALOGUE[code].httpStatus);
  });
});

describe('isAppError', () => {
  it('recognises AppError instances', () => {
    expect(isAppError(new AppError('INTERNAL', 'x'))).toBe(true);
  });

  it('recognises an AppError-shaped Error from another copy of the module', () => {
    const foreign = Object.assign(new Error('x'), { name: 'AppError', code: 'INTERNAL' });
    expect(isAppError(foreign)).toBe(true);
  });

  it.each([
    ['a plain Error', new Error('x')],
    ['an Error named AppError without a code', Object.assign(new Error('x'), { name: 'AppError' })],
    ['an Error with a code but another name', Object.assign(new Error('x'), { code: 'ECONNRESET' })],
    ['a plain object', { name: 'AppError', code: 'INTERNAL', message: 'x' }],
    ['a string', 'AppError'],
    ['null', null],
    ['undefined', undefined],
  ])('refuses %s', (_what, value) => {
    expect(isAppError(value)).toBe(false);
  });
});

describe('coerceError', () => {
  it('returns an Error unchanged', () => {
    const error = new TypeError('bad');
    expect(coerceError(error)).toBe(error);
  });

  it('uses a thrown string as the message and keeps it as cause', () => {
    const error = coerceError('boom');
    expect(error).toBeInstanceOf(Error);
    expect(error.message).toBe('boom');
    expect(error.cause).toBe('boom');
  });

  it.each([
    [{ status: 500 }, 'Non-error thrown: {"status":500}'],
    [42, 'Non-error thrown: 42'],
    [null, 'Non-error thrown: null'],
    [undefined, 'Non-error thrown: undefined'],
  ])('describes the non-error %j in the message', (value, message) => {
    const error = coerceError(value);
    expect(error.message).toBe(message);
    expect(error.cause).toBe(value);
  });

  it('survives values JSON cannot stringify', () => {
    const circular: Record<string, unknown> = {};
    circular['self'] = circular;
    expect(coerceError(circular).message).toBe('Non-error thrown: [object Object]');
    expect(coerceError(10n).message).toBe('Non-error thrown: 10');
  });
});

describe('toAppError', () => {
  it('keeps an AppError as it is', () => {
    const error = new AppError('UPSTREAM_BILLING', 'arrears');
    expect(toAppError(error, 'NETWORK_ERROR')).toBe(error);
  });

  it('wraps other errors as INTERNAL by default, keeping the message and the original as cause', () => {
    const original = new RangeError('index out of range');
    const error = toAppError(original);
    expect(error).toBeInstanceOf(AppError);
    expect(error).toMatchObject({ code: 'INTERNAL', retry: 'transient', message: 'index out of range' });
    expect(error.cause).toBe(original);
  });

  it('uses the fallback code given', () => {
    expect(toAppError(new Error('disk full'), 'STORAGE_WRITE_FAILED')).toMatchObject({ code: 'STORAGE_WRITE_FAILED', retry: 'transient' });
  });

  it('wraps a thrown string with an Error cause', () => {
    const error = toAppError('boom');
    expect(error.message).toBe('boom');
    expect(error.cause).toBeInstanceOf(Error);
  });
});

describe('docs/errors.md', () => {
  const doc = readFileSync(new URL('../../../docs/errors.md', import.meta.url), 'utf8');
  /** Rows of the catalogue table: | `CODE` | retry | HTTP | what happened | what to do | */
  const rows = new Map(
    [...doc.matchAll(/^\|\s*`([A-Z][A-Z0-9_]+)`\s*\|\s*([a-z]+)\s*\|\s*(\d{3})\s*\|/gm)].map((m) => [String(m[1]), { retry: m[2], httpStatus: Number(m[3]) }] as const),
  );

  it.each(entries)('documents %s with the same retry policy and HTTP status', (code, spec) => {
    expect(rows.get(code)).toEqual({ retry: spec.retry, httpStatus: spec.httpStatus });
  });

  it('documents no code that the catalogue does not have', () => {
    expect([...rows.keys()].filter((code) => !(code in ERROR_CATALOGUE))).toEqual([]);
  });
});
