import { describe, expect, it } from 'vitest';
import { ImageUrlSigner, expiresAt } from './image-url.js';

const key = { promptHash: 'aaaaaaaaaaaaaaaa', seed: 5, width: 1024, height: 1024 };
const requestId = '11111111-2222-4333-8444-555555555555';

function parse(url: string): { pathname: string; query: URLSearchParams } {
  const parsed = new URL(url);
  return { pathname: parsed.pathname, query: parsed.searchParams };
}

describe('ImageUrlSigner', () => {
  const signer = new ImageUrlSigner(Buffer.from('secret'));
  const now = Date.UTC(2026, 7, 1, 12);
  const url = signer.sign('http://127.0.0.1:1', key, requestId, expiresAt(now, 60_000), new Date(now));

  it('round-trips the image key through a signed URL', () => {
    const { pathname, query } = parse(url);
    expect(pathname).toBe(`/oss/zimage-emulator/20260801/${requestId}/1024x1024-s5-aaaaaaaaaaaaaaaa.png`);
    expect(signer.check(pathname, query, now)).toEqual({ ok: true, key });
  });

  it('expires at the TTL, rounded down to the second', () => {
    const { pathname, query } = parse(url);
    expect(signer.check(pathname, query, now + 59_999)).toMatchObject({ ok: true });
    expect(signer.check(pathname, query, now + 60_000)).toMatchObject({ ok: false, code: 'AccessDenied', message: 'Request has expired.' });
    expect(expiresAt(1_500, 1)).toBe(1);
  });

  it('rejects URLs signed with another secret or altered', () => {
    const { pathname, query } = parse(url);
    const stranger = new ImageUrlSigner(Buffer.from('other'));
    expect(stranger.check(pathname, query, now)).toMatchObject({ ok: false, code: 'SignatureDoesNotMatch' });
    expect(signer.check(pathname.replace('-s5-', '-s6-'), query, now)).toMatchObject({ ok: false, code: 'SignatureDoesNotMatch' });
    const wrongKeyId = new URLSearchParams(query);
    wrongKeyId.set('OSSAccessKeyId', 'LTAIother');
    expect(signer.check(pathname, wrongKeyId, now)).toMatchObject({ ok: false, code: 'InvalidAccessKeyId' });
    expect(signer.check('/oss/zimage-emulator/x.png', query, now)).toMatchObject({ ok: false, status: 404 });
  });
});
