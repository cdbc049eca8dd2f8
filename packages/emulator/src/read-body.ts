import type { IncomingMessage } from 'node:http';

export type ReadBodyResult = { readonly ok: true; readonly body: Buffer } | { readonly ok: false };

/**
 * Reads the request body, keeping at most `maxBytes`. An oversized body is still drained (not
 * stored) so the 400 can be delivered on a healthy connection instead of a reset the client
 * would misread as a network fault. Rejects if the client aborts.
 */
export function readBody(req: IncomingMessage, maxBytes: number): Promise<ReadBodyResult> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    let tooLarge = false;
    req.on('data', (chunk: Buffer) => {
      size += chunk.length;
      if (size > maxBytes) {
        tooLarge = true;
        chunks.length = 0;
      } else if (!tooLarge) {
        chunks.push(chunk);
      }
    });
    req.on('end', () => resolve(tooLarge ? { ok: false } : { ok: true, body: Buffer.concat(chunks) }));
    req.on('error', reject);
    req.on('close', () => {
      if (!req.complete) reject(new Error('client closed the connection before sending the whole body'));
    });
  });
}
