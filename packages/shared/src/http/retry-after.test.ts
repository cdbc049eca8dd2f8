import { describe, expect, it } from 'vitest';
import { parseRetryAfter } from './retry-after.js';

describe('parseRetryAfter', () => {
  const now = Date.parse('2026-11-23T12:00:00Z');

  it.each([
    [{ 'retry-after': '5' }, 5_000],
    [{ 'retry-after': '0' }, 0],
    [{ 'retry-after': '1.5' }, 1_500],
    [{ 'retry-after': ['3', '9'] }, 3_000],
    [{ 'retry-after-ms': '250' }, 250],
    [{ 'retry-after-ms': '250.2' }, 251],
    [{ 'retry-after-ms': '250', 'retry-after': '5' }, 250],
  ])('reads %o as %i ms', (headers, expected) => {
    expect(parseRetryAfter(headers, now)).toBe(expected);
  });

  it.each(['-5', '5.', '1 2', 'Tuesday 5', '99 bottles'])('does not mistake %s for a date', (value) => {
    expect(parseRetryAfter({ 'retry-after': value }, now)).toBeUndefined();
  });

  it('caps a huge Retry-After at ten minutes', () => {
    expect(parseRetryAfter({ 'retry-after': '99999999999999999999' }, now)).toBe(600_000);
    expect(parseRetryAfter({ 'retry-after-ms': '86400000' }, now)).toBe(600_000);
  });

  it('reads an HTTP date as the time left until it', () => {
    expect(parseRetryAfter({ 'retry-after': 'Mon, 23 Nov 2026 12:00:30 GMT' }, now)).toBe(30_000);
  });

  it('gives 0 for an HTTP date in the past', () => {
    expect(parseRetryAfter({ 'retry-after': 'Mon, 23 Nov 2026 11:59:00 GMT' }, now)).toBe(0);
  });

  it('falls back to retry-after when retry-after-ms is garbage', () => {
    expect(parseRetryAfter({ 'retry-after-ms': 'soon', 'retry-after': '2' }, now)).toBe(2_000);
  });

  it.each([{}, { 'retry-after': '' }, { 'retry-after': 'soon' }, { 'retry-after': '10s' }, { 'retry-after-ms': 'x' }, { 'retry-after': undefined }])(
    'gives undefined for %o',
    (headers) => {
      expect(parseRetryAfter(headers, now)).toBeUndefined();
    },
  );
});
