import { describe, expect, it } from 'vitest';
import { parseOssErrorBody } from './oss-error-body.js';

function ossError(code: string, message: string): string {
  return (
    '<?xml version="1.0" encoding="UTF-8"?>\n<Error>\n' +
    `  <Code>${code}</Code>\n  <Message>${message}</Message>\n` +
    '  <RequestId>5C3D9175B6FC201293AD4890</RequestId>\n  <HostId>bucket.oss-cn-beijing.aliyuncs.com</HostId>\n</Error>\n'
  );
}

describe('parseOssErrorBody', () => {
  it.each([
    ['an expired signed URL', ossError('AccessDenied', 'Request has expired.'), 'AccessDenied', 'Request has expired.'],
    ['an expiry under another code', ossError('AccessDenied.Expired', 'request has EXPIRED'), 'AccessDenied.Expired', 'request has EXPIRED'],
    ['a removed object', ossError('NoSuchKey', 'The specified key does not exist.'), 'NoSuchKey', 'The specified key does not exist.'],
  ])('says the link is gone for %s', (_what, body, code, message) => {
    expect(parseOssErrorBody(body)).toEqual({ code, message, linkGone: true });
  });

  it.each([
    ['a bad signature', ossError('SignatureDoesNotMatch', 'The request signature we calculated does not match.')],
    ['a plain AccessDenied', ossError('AccessDenied', 'You have no right to access this object because of bucket acl.')],
    ['an unknown key id', ossError('InvalidAccessKeyId', 'The OSS Access Key Id you provided does not exist in our records.')],
  ])('proves nothing for %s', (_what, body) => {
    expect(parseOssErrorBody(body).linkGone).toBe(false);
  });

  it('decodes XML entities in the message', () => {
    expect(parseOssErrorBody(ossError('AccessDenied', 'Bucket &#39;x&#39; &amp; key &lt;y&gt; &#x22;z&#x22;')).message).toBe(
      `Bucket 'x' & key <y> "z"`,
    );
  });

  it('gives undefined fields for a body that is not an OSS error', () => {
    expect(parseOssErrorBody('')).toEqual({ code: undefined, message: undefined, linkGone: false });
    expect(parseOssErrorBody('<html><body>403 Forbidden</body></html>')).toEqual({ code: undefined, message: undefined, linkGone: false });
  });

  it('does not take a message longer than any OSS message', () => {
    expect(parseOssErrorBody(ossError('AccessDenied', `${'x'.repeat(2000)} Request has expired.`))).toMatchObject({ message: undefined, linkGone: false });
  });
});
