import type { ServerResponse } from 'node:http';

const TITLES: Readonly<Record<502 | 504, string>> = { 502: 'Bad Gateway', 504: 'Gateway Time-out' };

/**
 * A proxy-layer failure: an HTML page, not DashScope JSON, and no `x-request-id` (the request
 * never reached the service). Clients must survive a non-JSON error body.
 */
export function sendGatewayPage(res: ServerResponse, status: 502 | 504): void {
  const title = `${status} ${TITLES[status]}`;
  const body =
    `<html>\r\n<head><title>${title}</title></head>\r\n<body>\r\n` +
    `<center><h1>${title}</h1></center>\r\n<hr><center>nginx</center>\r\n</body>\r\n</html>\r\n`;
  res.writeHead(status, { 'content-type': 'text/html', 'content-length': Buffer.byteLength(body) });
  res.end(body);
}
