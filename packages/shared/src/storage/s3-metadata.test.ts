import { describe, expect, it } from 'vitest';
import { isAppError } from '../errors.js';
import { decodeMetadataValue, decodeS3Metadata, encodeMetadataValue, encodeS3Metadata, MAX_S3_METADATA_BYTES, s3MetadataBytes } from './s3-metadata.js';

const SHA = 'ab'.repeat(32);

describe('S3 metadata encoding', () => {
  it.each(['plain', 'SKU-1_a.b', 'has inner  spaces', '100%', 'a=b&c', ''])('stores printable ASCII %j as is', (value) => {
    expect(encodeMetadataValue(value)).toBe(value);
  });

  it.each([
    ['手机壳', 'pct-utf8:%E6%89%8B%E6%9C%BA%E5%A3%B3'],
    ['红色 100%', 'pct-utf8:%E7%BA%A2%E8%89%B2%20100%25'],
    ['line\nbreak', 'pct-utf8:line%0Abreak'],
    [' padded ', 'pct-utf8:%20padded%20'],
    ['pct-utf8:looks encoded', 'pct-utf8:pct-utf8:looks%20encoded'],
    ['café 😀', 'pct-utf8:caf%C3%A9%20%F0%9F%98%80'],
  ])('percent-encodes %j behind the marker as header-safe ASCII', (value, encoded) => {
    expect(encodeMetadataValue(value)).toBe(encoded);
    expect(encoded).toMatch(/^[\x21-\x7e]*$/);
    expect(decodeMetadataValue(encoded)).toBe(value);
  });

  it('leaves a malformed encoded value readable instead of failing', () => {
    expect(decodeMetadataValue('pct-utf8:%E6%ZZ')).toBe('pct-utf8:%E6%ZZ');
  });

  it('lowercases keys, adds the sha256 and lets it win over a job entry of the same name', () => {
    expect(encodeS3Metadata({ SKU: 'A1', Title: '手机壳', SHA256: 'forged' }, SHA.toUpperCase())).toEqual({
      sku: 'A1',
      title: 'pct-utf8:%E6%89%8B%E6%9C%BA%E5%A3%B3',
      sha256: SHA,
    });
  });

  it('round-trips through decode, separating the digest from job metadata', () => {
    const stored = encodeS3Metadata({ Title: '手机壳', sku: 'A1' }, SHA);
    expect(decodeS3Metadata(stored)).toEqual({ sha256: SHA, metadata: { title: '手机壳', sku: 'A1' } });
    expect(decodeS3Metadata(undefined)).toEqual({ sha256: undefined, metadata: {} });
  });

  it.each([
    ['a header-unsafe key', { 'bad key': 'x' }, 'metadata.bad key'],
    ['a key with a colon', { 'a:b': 'x' }, 'metadata.a:b'],
    ['a too-long key', { ['k'.repeat(65)]: 'x' }, `metadata.${'k'.repeat(65)}`],
    ['an unpaired surrogate', { t: 'a\ud800' }, 'metadata.t'],
  ])('refuses %s with REQUEST_INVALID (retrying cannot help)', (_label, metadata, field) => {
    let error: unknown;
    try {
      encodeS3Metadata(metadata, SHA);
    } catch (thrown) {
      error = thrown;
    }
    expect(isAppError(error) && error.code).toBe('REQUEST_INVALID');
    expect(isAppError(error) && error.details['field']).toBe(field);
  });

  it('counts encoded bytes against the 2 KB S3 limit, where percent-encoding triples CJK text', () => {
    // 600 CJK characters are 1800 UTF-8 bytes (within the request limit) but 5400+ once encoded.
    const title = '手'.repeat(600);
    let error: unknown;
    try {
      encodeS3Metadata({ title }, SHA);
    } catch (thrown) {
      error = thrown;
    }
    expect(isAppError(error) && error.code).toBe('REQUEST_INVALID');
    expect(isAppError(error) && (error.details['bytes'] as number) > MAX_S3_METADATA_BYTES).toBe(true);

    const fits = encodeS3Metadata({ title: '手'.repeat(200) }, SHA);
    expect(s3MetadataBytes(fits)).toBeLessThanOrEqual(MAX_S3_METADATA_BYTES);
  });
});
