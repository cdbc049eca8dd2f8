import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { prepareTickIngest, type TickSources } from './tick-ingest.js';

/** A real HTTP feed server on a free loopback port; `handler` answers, `requests` counts what arrived. */
async function feedServer(handler: (req: IncomingMessage, res: ServerResponse) => void) {
  let requests = 0;
  const server = createServer((req, res) => {
    requests += 1;
    handler(req, res);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as { port: number }).port;
  return {
    port,
    get requests() {
      return requests;
    },
    close: () => new Promise<void>((resolve) => {
      server.closeAllConnections();
      server.close(() => resolve());
    }),
  };
}

const tick = (feed: string) => ({ id: 'feed', spec: { every: '1h', feed, key: 'feed/{sku}.png' } });

describe('a feed pipeline fetches through the guarded outbound layer', () => {
  let dir: string;
  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'zimage-feed-'));
  });
  afterEach(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('reads a feed of items into the tick file', async () => {
    const server = await feedServer((_req, res) => res.end(JSON.stringify({ items: [{ prompt: 'a cat', metadata: { sku: 'A' } }] })));
    try {
      const sources: TickSources = { filesDir: undefined, policy: { allowedHosts: [`127.0.0.1:${server.port}`] }, fetchFeeds: true };
      const ingest = await prepareTickIngest(tick(`http://127.0.0.1:${server.port}/feed.json`), new Date(), dir, sources);
      expect(JSON.parse((await readFile(ingest!.path, 'utf8')).trim())).toEqual({ prompt: 'a cat', metadata: { sku: 'A' } });
    } finally {
      await server.close();
    }
  });

  it('refuses a name rebound to a private address between the check and the connect, and sends nothing', async () => {
    const server = await feedServer((_req, res) => res.end('[]'));
    try {
      // The check's DNS says public; the connection's own lookup of `localhost` says 127.0.0.1.
      const sources: TickSources = {
        filesDir: undefined,
        policy: { allowedHosts: [] },
        fetchFeeds: true,
        resolve: async () => [{ address: '93.184.216.34', family: 4 }],
      };
      const error = await prepareTickIngest(tick(`http://localhost:${server.port}/feed.json`), new Date(), dir, sources).catch((e: unknown) => e);
      expect(error).toMatchObject({ code: 'WEBHOOK_URL_REFUSED' });
      expect((error as Error).message).toMatch(/^Feed localhost:\d+ failed: Webhook URL refused: host localhost .*(loopback|127\.0\.0\.1|::1)/);
      expect(server.requests).toBe(0);
    } finally {
      await server.close();
    }
  });

  it('stops reading an endless body at 20 MB and answers PAYLOAD_TOO_LARGE', async () => {
    let sent = 0;
    const chunk = Buffer.alloc(64 * 1024, 0x20);
    const server = await feedServer((_req, res) => {
      res.writeHead(200, { 'content-type': 'application/json' });
      res.write('[');
      const pump = () => {
        while (!res.destroyed && res.write(chunk)) sent += chunk.length;
        if (!res.destroyed) res.once('drain', pump);
      };
      res.on('close', () => res.removeAllListeners('drain'));
      pump();
    });
    try {
      const sources: TickSources = { filesDir: undefined, policy: { allowedHosts: [`127.0.0.1:${server.port}`] }, fetchFeeds: true };
      const error = await prepareTickIngest(tick(`http://127.0.0.1:${server.port}/feed.json`), new Date(), dir, sources).catch((e: unknown) => e);
      expect(error).toMatchObject({ code: 'PAYLOAD_TOO_LARGE' });
      expect((error as Error).message).toBe(`Feed 127.0.0.1:${server.port}: more than ${20 * 1024 * 1024} bytes`);
      // Kernel buffers hold some of what was written; far less than a second cap's worth.
      expect(sent).toBeLessThan(40 * 1024 * 1024);
    } finally {
      await server.close();
    }
  });

  it('does not follow a redirect', async () => {
    const target = await feedServer((_req, res) => res.end('[]'));
    const server = await feedServer((_req, res) => {
      res.writeHead(302, { location: `http://127.0.0.1:${target.port}/feed.json` });
      res.end();
    });
    try {
      const sources: TickSources = { filesDir: undefined, policy: { allowedHosts: [`127.0.0.1:${server.port}`, `127.0.0.1:${target.port}`] }, fetchFeeds: true };
      const error = await prepareTickIngest(tick(`http://127.0.0.1:${server.port}/feed.json`), new Date(), dir, sources).catch((e: unknown) => e);
      expect(error).toMatchObject({ code: 'NETWORK_ERROR', message: `Feed 127.0.0.1:${server.port} answered HTTP 302 (redirects are not followed)` });
      expect(target.requests).toBe(0);
    } finally {
      await server.close();
      await target.close();
    }
  });
});
