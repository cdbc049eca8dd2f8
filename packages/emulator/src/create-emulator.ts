import type { IncomingMessage, ServerResponse } from 'node:http';
import { createServer } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import { randomBytes, randomInt, randomUUID } from 'node:crypto';
import type { Emulator } from './emulator.js';
import type { EmulatorOptionsInput } from './emulator-options.js';
import { mergeEmulatorOptions, resolveEmulatorOptions } from './emulator-options.js';
import { sendErrorBody } from './error-body.js';
import { FAULT_CATALOGUE } from './fault-catalogue.js';
import { FaultPicker } from './fault-picker.js';
import { RESET_PATH, STATS_PATH, handleControl } from './handle-control.js';
import type { GenerationContext } from './handle-generation.js';
import { GENERATION_PATH, handleGeneration } from './handle-generation.js';
import type { DownloadContext } from './handle-image-download.js';
import { handleImageDownload } from './handle-image-download.js';
import { IMAGE_PATH_PREFIX, ImageUrlSigner } from './image-url.js';
import { LruCache } from './lru-cache.js';
import { Prng } from './prng.js';
import { ManagedLimiter } from './managed-limiter.js';
import { StatsRecorder } from './stats.js';

const PNG_CACHE_ENTRIES = 16;

/** Starts an emulator listening on `host:port` (port 0 = any free port). */
export async function createEmulator(input: EmulatorOptionsInput = {}): Promise<Emulator> {
  let options = resolveEmulatorOptions(input);
  const rng = new Prng(options.randomSeed ?? randomInt(0, 2 ** 32));
  const stats = new StatsRecorder();
  const shutdown = new AbortController();
  const faults = new FaultPicker(rng, () => options.faults.rates);
  const signer = new ImageUrlSigner(randomBytes(32));
  const sockets = new Set<Socket>();
  const limiter = new ManagedLimiter(() => options);

  const server = createServer();
  server.on('connection', (socket) => {
    sockets.add(socket);
    socket.once('close', () => sockets.delete(socket));
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.port, options.host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  const port = (server.address() as AddressInfo).port;
  const url = `http://${urlHost(options.host)}:${port}`;

  const generation: GenerationContext = {
    options: () => options,
    baseUrl: url,
    stats,
    limiter,
    faults,
    rng,
    signer,
    shutdown: shutdown.signal,
  };
  const download: DownloadContext = {
    signer,
    stats,
    pngCache: new LruCache(PNG_CACHE_ENTRIES),
    images: () => options.images,
    clockSkewMs: () => options.imageHostClockSkewMs,
    host: `${urlHost(options.host)}:${port}`,
  };
  server.on('request', (req: IncomingMessage, res: ServerResponse) => {
    route(req, res, generation, download).catch(() => {
      // A bug in the emulator must look like an upstream 500, never hang the client.
      if (!res.headersSent) sendErrorBody(res, FAULT_CATALOGUE.InternalError, randomUUID());
      else res.destroy();
    });
  });

  let closing: Promise<void> | undefined;
  const close = (): Promise<void> => {
    closing ??= (async () => {
      shutdown.abort();
      const serverClosed = new Promise<void>((resolve) => server.close(() => resolve()));
      // Waiting for each socket's 'close' also lets every response's 'close' handler run, so
      // the stats are settled (inFlight 0) when this resolves.
      const socketsClosed = [...sockets].map(
        (socket) => new Promise<void>((resolve) => socket.once('close', () => resolve()).destroy()),
      );
      await Promise.all([serverClosed, ...socketsClosed]);
    })();
    return closing;
  };

  return {
    url,
    port,
    stats: () => stats.snapshot(),
    limiter: limiter.report,
    options: () => structuredClone(options),
    configure(patch: EmulatorOptionsInput): void {
      for (const fixed of ['host', 'port'] as const) {
        if (patch[fixed] !== undefined && patch[fixed] !== options[fixed]) {
          throw new TypeError(`Emulator option '${fixed}' cannot change after start`);
        }
      }
      options = mergeEmulatorOptions(options, patch);
      limiter.reconfigure();
      if (patch.randomSeed !== undefined) rng.reseed(patch.randomSeed);
    },
    failNext: (...steps) => faults.enqueue(steps),
    resetStats: () => stats.reset(),
    close,
    [Symbol.asyncDispose]: close,
  };
}

async function route(
  req: IncomingMessage,
  res: ServerResponse,
  generation: GenerationContext,
  download: DownloadContext,
): Promise<void> {
  const url = new URL(req.url ?? '/', 'http://emulator.invalid');
  if (url.pathname === GENERATION_PATH) {
    if (req.method === 'POST') return handleGeneration(req, res, generation);
    const error = {
      status: 405,
      code: 'MethodNotAllowed',
      message: `Method ${req.method ?? ''} is not allowed; use POST.`,
    };
    return sendErrorBody(res, error, randomUUID(), { allow: 'POST' });
  }
  if (url.pathname.startsWith(IMAGE_PATH_PREFIX)) return handleImageDownload(req, res, url, download);
  if (url.pathname === STATS_PATH || url.pathname === RESET_PATH) {
    return handleControl(req, res, url.pathname, generation.stats);
  }
  const error = { status: 404, code: 'NotFound', message: `No route for ${url.pathname}.` };
  return sendErrorBody(res, error, randomUUID());
}

/** How `host` appears in a URL: wildcard addresses become loopback, IPv6 gets brackets. */
function urlHost(host: string): string {
  if (host === '0.0.0.0') return '127.0.0.1';
  if (host === '::') return '[::1]';
  return host.includes(':') ? `[${host}]` : host;
}

