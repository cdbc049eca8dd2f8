/**
 * A switchable reverse proxy in front of an S3 server (s3rver), for storage faults that stopping
 * the server cannot produce. The workers talk to the proxy; whoever verifies the stored objects
 * talks to the server directly, so a fault never hides what was really stored.
 *
 * - `pass`: every request goes through unchanged (its `host` header too, so SigV4 signatures
 *   still verify). If the server is unreachable the client's socket is destroyed.
 * - `refuse403`: every request is answered 403 with the XML error body real S3 sends for a bucket
 *   policy or credentials that deny access (`AccessDenied` / `Access Denied`; HEAD has no body).
 * - `down`: the proxy stops listening and drops its open connections, so clients get
 *   ECONNREFUSED exactly as from a stopped S3.
 */
import { randomBytes } from 'node:crypto';
import { createServer, request, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';

export type S3FaultMode = 'pass' | 'refuse403' | 'down';

export interface S3FaultProxy {
  /** The URL to give clients as AWS_ENDPOINT_URL_S3 (stable across `down`). */
  readonly endpoint: string;
  readonly mode: S3FaultMode;
  /** Requests answered or forwarded per mode since start (`down` counts none: nothing arrives). */
  readonly counts: Readonly<Record<'passed' | 'refused' | 'upstreamErrors', number>>;
  setMode(mode: S3FaultMode): Promise<void>;
  close(): Promise<void>;
}

/** What S3 answers when a policy or the credentials deny the request (status 403). */
export function accessDeniedBody(requestId: string, hostId: string): string {
  return `<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>AccessDenied</Code><Message>Access Denied</Message><RequestId>${requestId}</RequestId><HostId>${hostId}</HostId></Error>`;
}

export async function startS3FaultProxy(upstreamEndpoint: string): Promise<S3FaultProxy> {
  const upstream = new URL(upstreamEndpoint);
  const counts = { passed: 0, refused: 0, upstreamErrors: 0 };
  let mode: S3FaultMode = 'pass';
  let server: Server | undefined;
  let port = 0;

  const refuse = (req: IncomingMessage, res: ServerResponse) => {
    counts.refused += 1;
    const requestId = randomBytes(8).toString('hex').toUpperCase();
    const hostId = randomBytes(48).toString('base64');
    // Read the body first: answering a PUT before it is consumed makes the SDK see EPIPE, not 403.
    req.resume();
    req.once('end', () => {
      const body = req.method === 'HEAD' ? '' : accessDeniedBody(requestId, hostId);
      res.writeHead(403, {
        'content-type': 'application/xml',
        'content-length': Buffer.byteLength(body),
        'x-amz-request-id': requestId,
        'x-amz-id-2': hostId,
        server: 'AmazonS3',
      });
      res.end(body);
    });
  };

  const forward = (req: IncomingMessage, res: ServerResponse) => {
    counts.passed += 1;
    const out = request(
      { protocol: upstream.protocol, hostname: upstream.hostname, port: upstream.port, method: req.method, path: req.url, headers: req.headers },
      (answer) => {
        res.writeHead(answer.statusCode ?? 502, answer.headers);
        answer.pipe(res);
      },
    );
    out.on('error', () => {
      // No S3 behind us: the client sees its connection cut, not an answer S3 would never give.
      counts.upstreamErrors += 1;
      req.socket.destroy();
    });
    req.pipe(out);
  };

  const listen = () =>
    new Promise<void>((resolve, reject) => {
      const s = createServer((req, res) => (mode === 'refuse403' ? refuse(req, res) : forward(req, res)));
      s.once('error', reject);
      s.listen(port, '127.0.0.1', () => {
        port = (s.address() as AddressInfo).port;
        server = s;
        resolve();
      });
    });

  const stop = async () => {
    const s = server;
    server = undefined;
    if (!s) return;
    s.closeAllConnections();
    await new Promise<void>((resolve) => s.close(() => resolve()));
  };

  await listen();
  return {
    endpoint: `http://127.0.0.1:${port}`,
    get mode() {
      return mode;
    },
    counts,
    async setMode(next) {
      if (next === 'down') await stop();
      else if (!server) await listen();
      mode = next;
    },
    close: stop,
  };
}
