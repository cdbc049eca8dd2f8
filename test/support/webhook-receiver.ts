/**
 * A real webhook receiver on loopback for tests. Every request is recorded and verified with the
 * `standardwebhooks` package — an implementation independent of ours. What it answers is set per
 * test (`respond`), and it can go down and come back up on the same port.
 */
import { createServer, type IncomingHttpHeaders, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Webhook } from 'standardwebhooks';

export interface ReceivedDelivery {
  path: string;
  headers: IncomingHttpHeaders;
  body: string;
  at: number;
  /** The verified payload, or undefined when verification failed (see verifyError). */
  payload: { type: string; timestamp: string; data: Record<string, unknown> } | undefined;
  verifyError: string | undefined;
}

export interface Answer {
  status: number;
  headers?: Record<string, string>;
  body?: string;
}

export interface WebhookReceiver {
  readonly url: string;
  readonly port: number;
  readonly received: ReceivedDelivery[];
  respond(fn: (delivery: ReceivedDelivery, index: number) => Answer): void;
  /** Stops listening (connections refused) until `up()`. */
  down(): Promise<void>;
  up(): Promise<void>;
  waitFor(predicate: (received: ReceivedDelivery[]) => boolean, timeoutMs?: number): Promise<void>;
  close(): Promise<void>;
}

export async function startWebhookReceiver(secret: string): Promise<WebhookReceiver> {
  const verifier = new Webhook(secret);
  const received: ReceivedDelivery[] = [];
  let answer: (delivery: ReceivedDelivery, index: number) => Answer = () => ({ status: 204 });
  let server: Server | undefined;
  let port = 0;

  const listen = () =>
    new Promise<void>((resolve, reject) => {
      const s = createServer((req, res) => {
        const chunks: Buffer[] = [];
        req.on('data', (c: Buffer) => chunks.push(c));
        req.on('end', () => {
          const body = Buffer.concat(chunks).toString('utf8');
          let payload: ReceivedDelivery['payload'];
          let verifyError: string | undefined;
          try {
            payload = verifier.verify(body, {
              'webhook-id': String(req.headers['webhook-id'] ?? ''),
              'webhook-timestamp': String(req.headers['webhook-timestamp'] ?? ''),
              'webhook-signature': String(req.headers['webhook-signature'] ?? ''),
            }) as ReceivedDelivery['payload'];
          } catch (error) {
            verifyError = (error as Error).message;
          }
          const delivery: ReceivedDelivery = { path: req.url ?? '/', headers: req.headers, body, at: Date.now(), payload, verifyError };
          received.push(delivery);
          const a = answer(delivery, received.length - 1);
          res.writeHead(a.status, a.headers ?? {});
          res.end(a.body ?? '');
        });
      });
      s.once('error', reject);
      s.listen(port, '127.0.0.1', () => {
        port = (s.address() as AddressInfo).port;
        server = s;
        resolve();
      });
    });

  const down = async () => {
    const s = server;
    server = undefined;
    if (!s) return;
    s.closeAllConnections();
    await new Promise<void>((resolve) => s.close(() => resolve()));
  };

  await listen();
  return {
    get url() {
      return `http://127.0.0.1:${port}`;
    },
    get port() {
      return port;
    },
    received,
    respond(fn) {
      answer = fn;
    },
    down,
    up: listen,
    async waitFor(predicate, timeoutMs = 20_000) {
      const until = Date.now() + timeoutMs;
      while (!predicate(received)) {
        if (Date.now() > until) throw new Error(`receiver: timed out after ${timeoutMs} ms (${received.length} received)`);
        await new Promise((r) => setTimeout(r, 25));
      }
    },
    close: down,
  };
}
