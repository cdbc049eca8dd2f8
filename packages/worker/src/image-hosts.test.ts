import { describe, expect, it } from 'vitest';
import { isAppError } from '@zimage/shared';
import { checkImageUrl, DEFAULT_IMAGE_HOSTS, imageHostPolicy } from './image-hosts.js';

const SGP_IMAGE = 'https://dashscope-result-sgp.oss-ap-southeast-1.aliyuncs.com/1d/ab/x.png?Expires=1785000000&Signature=abc%2Bdef%3D';

function refusal(raw: string, policy: ReturnType<typeof imageHostPolicy>): string {
  try {
    checkImageUrl(raw, policy);
  } catch (error) {
    if (isAppError(error)) {
      expect(error.code).toBe('IMAGE_HOST_NOT_ALLOWED');
      expect(error.retry).toBe('pause'); // every job would pay and fail alike: pause the queue
      return error.message;
    }
    throw error;
  }
  throw new Error(`expected ${raw} to be refused`);
}

describe('imageHostPolicy', () => {
  it('allows *.aliyuncs.com plus the base URL host by default', () => {
    expect(imageHostPolicy(undefined, 'http://127.0.0.1:8089/')).toEqual({
      hosts: [...DEFAULT_IMAGE_HOSTS, '127.0.0.1:8089'],
      baseOrigins: ['http://127.0.0.1:8089'],
    });
  });

  it('allows the host and origin of every base URL when given several', () => {
    const policy = imageHostPolicy(undefined, ['http://127.0.0.1:8089', 'http://127.0.0.1:8090/api']);
    expect(policy.baseOrigins).toEqual(['http://127.0.0.1:8089', 'http://127.0.0.1:8090']);
    expect(checkImageUrl('http://127.0.0.1:8090/oss/x.png', policy).port).toBe('8090');
    expect(checkImageUrl('http://127.0.0.1:8089/oss/x.png', policy).port).toBe('8089');
    refusal('http://127.0.0.1:8091/oss/x.png', policy);
  });

  it('replaces the default with configured hosts, keeping the base host', () => {
    expect(imageHostPolicy(['cdn.example.com'], 'https://dashscope-intl.aliyuncs.com').hosts).toEqual(['cdn.example.com', 'dashscope-intl.aliyuncs.com']);
  });
});

describe('checkImageUrl with the default policy', () => {
  const policy = imageHostPolicy(undefined, 'https://dashscope-intl.aliyuncs.com');
  const emulator = imageHostPolicy(undefined, 'http://127.0.0.1:8089');

  it.each([
    SGP_IMAGE,
    'https://dashscope-result-bj.oss-cn-beijing.aliyuncs.com/x.png',
    'https://dashscope-7c2c.oss-cn-shanghai.aliyuncs.com/7d/93/x.png?Expires=1',
    'https://DASHSCOPE-RESULT-SH.OSS-ACCELERATE.ALIYUNCS.COM/x.png',
  ])('accepts %s unchanged', (raw) => {
    const url = checkImageUrl(raw, policy);
    expect(url).toBeInstanceOf(URL);
    expect(url.href.toLowerCase()).toBe(raw.toLowerCase());
  });

  it('keeps the signed query string exactly', () => {
    expect(checkImageUrl(SGP_IMAGE, policy).search).toBe('?Expires=1785000000&Signature=abc%2Bdef%3D');
  });

  it('upgrades http://…aliyuncs.com to https', () => {
    const url = checkImageUrl('http://dashscope-result-sgp.oss-ap-southeast-1.aliyuncs.com/x.png?Signature=a', policy);
    expect(url.protocol).toBe('https:');
    expect(url.href).toBe('https://dashscope-result-sgp.oss-ap-southeast-1.aliyuncs.com/x.png?Signature=a');
  });

  it('accepts plain http only from the base origin (a local emulator)', () => {
    const url = checkImageUrl('http://127.0.0.1:8089/oss/x.png?Expires=1', emulator);
    expect(url.href).toBe('http://127.0.0.1:8089/oss/x.png?Expires=1');
  });

  it('accepts aliyuncs.com images while the emulator is the base', () => {
    expect(checkImageUrl(SGP_IMAGE, emulator).protocol).toBe('https:');
  });

  it.each([
    ['another port on the emulator host', 'http://127.0.0.1:9999/oss/x.png'],
    ['a look-alike domain', 'https://aliyuncs.com.evil.com/x.png'],
    ['a foreign domain', 'https://evil.com/x.png'],
    ['a suffix without the dot', 'https://evilaliyuncs.com/x.png'],
    ['the bare parent domain', 'https://aliyuncs.com/x.png'],
    ['cloud metadata', 'https://169.254.169.254/latest/meta-data/'],
    ['cloud metadata over http', 'http://169.254.169.254/latest/meta-data/'],
    ['localhost', 'http://localhost:8089/x.png'],
    ['a local file', 'file:///etc/passwd'],
    ['credentials that look like an allowed host', 'https://x.aliyuncs.com@evil.com/x.png'],
    ['an allowed host in the fragment', 'https://evil.com/#.aliyuncs.com'],
    ['a decimal IP', 'http://2852039166/latest/meta-data/'],
    ['garbage', 'not a url'],
    ['an empty string', ''],
  ])('refuses %s (%s) with the emulator as base', (_what, raw) => {
    refusal(raw, emulator);
  });

  it('refuses https on the emulator origin host when the base is http on another port', () => {
    refusal('https://127.0.0.1:9999/x.png', emulator);
  });

  it('refuses plain http to the base host when the base itself is https', () => {
    const base = imageHostPolicy(undefined, 'https://images.example.com');
    expect(checkImageUrl('https://images.example.com/x.png', base).protocol).toBe('https:');
    expect(refusal('http://images.example.com/x.png', base)).toMatch(/must be https/);
  });

  it('names the refused host and the allowed list', () => {
    const message = refusal('https://evil.com/x.png', policy);
    expect(message).toContain('evil.com');
    expect(message).toContain('*.aliyuncs.com');
  });
});

describe('checkImageUrl with ZIMAGE_IMAGE_HOSTS', () => {
  const policy = imageHostPolicy(['*.cdn.example.com', 'images.example.org', 'minio.local:9000'], 'https://dashscope-intl.aliyuncs.com');

  it.each([
    'https://eu.cdn.example.com/x.png',
    'https://a.b.cdn.example.com/x.png',
    'https://images.example.org/x.png',
    'https://minio.local:9000/bucket/x.png',
    'https://dashscope-intl.aliyuncs.com/x.png', // the base host is always allowed
  ])('accepts %s', (raw) => {
    expect(checkImageUrl(raw, policy).href).toBe(raw);
  });

  it.each([
    'https://cdn.example.com/x.png', // "*." needs a subdomain
    'https://evilcdn.example.com/x.png',
    'https://minio.local:9001/x.png',
    'https://minio.local/x.png',
    'https://sub.images.example.org/x.png',
    'https://dashscope-result-sgp.oss-ap-southeast-1.aliyuncs.com/x.png', // the default is replaced
    'http://eu.cdn.example.com/x.png', // allowed host, but not https
    'https://images.example.org:8443/x.png', // a pattern without a port allows the default port only
    'https://eu.cdn.example.com:444/x.png',
  ])('refuses %s', (raw) => {
    refusal(raw, policy);
  });
});
