import type { ServerResponse } from 'node:http';
import { randomBytes } from 'node:crypto';

export type OssErrorCode =
  | 'AccessDenied'
  | 'SignatureDoesNotMatch'
  | 'InvalidAccessKeyId'
  | 'NoSuchKey'
  | 'MethodNotAllowed';

/**
 * Answers like Alibaba OSS does for a signed-URL download it refuses: an XML `<Error>` document
 * (not DashScope JSON), with a 24-hex-digit `x-oss-request-id`.
 */
export function sendOssError(
  res: ServerResponse,
  status: number,
  code: OssErrorCode,
  message: string,
  host: string,
): void {
  const requestId = randomBytes(12).toString('hex').toUpperCase();
  const body =
    '<?xml version="1.0" encoding="UTF-8"?>\n' +
    '<Error>\n' +
    `  <Code>${code}</Code>\n` +
    `  <Message>${escapeXml(message)}</Message>\n` +
    `  <RequestId>${requestId}</RequestId>\n` +
    `  <HostId>${escapeXml(host)}</HostId>\n` +
    '</Error>\n';
  res.writeHead(status, {
    'content-type': 'application/xml',
    'content-length': Buffer.byteLength(body),
    'x-oss-request-id': requestId,
    server: 'AliyunOSS',
  });
  res.end(body);
}

function escapeXml(text: string): string {
  return text.replace(/[<>&'"]/g, (ch) => `&#${ch.charCodeAt(0)};`);
}
