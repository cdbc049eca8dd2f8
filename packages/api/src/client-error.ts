/**
 * Requests node's HTTP parser refuses before fastify sees them (headers or a request line over
 * 16 KiB, a malformed request line, a client that times out) get our error shape as well, so a
 * client's error handling has one format to read. Written like fastify's default handler:
 * answered on the raw socket, then the connection is closed.
 */
import { STATUS_CODES } from 'node:http';
import type { Socket } from 'node:net';
import type { ErrorCode } from '@zimage/shared';

interface Refusal {
  status: number;
  code: ErrorCode;
  message: string;
}

function refusalFor(error: NodeJS.ErrnoException): Refusal {
  if (error.code === 'HPE_HEADER_OVERFLOW') return { status: 431, code: 'REQUEST_INVALID', message: 'headers: the request line and headers are over 16 KiB (a query string that long belongs in a body)' };
  if (error.code === 'ERR_HTTP_REQUEST_TIMEOUT') return { status: 408, code: 'REQUEST_INVALID', message: 'request: not received in time' };
  return { status: 400, code: 'REQUEST_INVALID', message: 'request: not a well-formed HTTP request' };
}

export function answerClientError(error: NodeJS.ErrnoException, socket: Socket): void {
  // A reset connection has nobody to answer.
  if (error.code === 'ECONNRESET' || socket.destroyed) return;
  const refusal = refusalFor(error);
  const body = JSON.stringify({ error: { code: refusal.code, message: refusal.message } });
  if (socket.writable) {
    socket.write(
      `HTTP/1.1 ${refusal.status} ${STATUS_CODES[refusal.status]}\r\nContent-Length: ${Buffer.byteLength(body)}\r\nContent-Type: application/json\r\nConnection: close\r\n\r\n${body}`,
    );
  }
  socket.destroy();
}
