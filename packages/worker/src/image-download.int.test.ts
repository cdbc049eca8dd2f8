/**
 * downloadImage against real HTTP: the emulator's OSS stand-in for what OSS answers (expired,
 * NoSuchKey, bad signature), and a tiny loopback server for answers the emulator never gives (a
 * truncated PNG with a matching Content-Length, an endless error body).
 */
import { createServer, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { setTimeout as delay } from 'node:timers/promises';
import { createEmulator, GENERATION_PATH, type Emulator } from '@zimage/emulator';
import { AppError } from '@zimage/shared';
import { Agent } from 'undici';
import { afterEach, describe, expect, it } from 'vitest';
import { downloadImage, type DownloadOptions } from './image-download.js';
import { imageHostPolicy } from './image-hosts.js';

const closers: Array<() => Promise<unknown>> = [];
afterEach(async () => {
  await Promise.all(closers.splice(0).map((close) => close()));
});

async function startEmulator(imageTtlMs?: number): Promise<Emulator> {
  const emulator = await createEmulator({
    latency: { minMs: 0, maxMs: 0, extendExtraMinMs: 0, extendExtraMaxMs: 0 },
    quota: { rps: Infinity, rpm: Infinity, burst: { enabled: false } },
    randomSeed: 1,
    ...(imageTtlMs === undefined ? {} : { imageTtlMs }),
  });
  closers.push(() => emulator.close());
  return emulator;
}

/** One real generation; returns the signed image URL. */
async function generateImageUrl(emulator: Emulator, size = '512*512'): Promise<string> {
  const res = await fetch(emulator.url + GENERATION_PATH, {
    method: 'POST',
    headers: { authorization: 'Bearer sk-test', 'content-type': 'application/json' },
    body: JSON.stringify({
      model: 'z-image-turbo',
      input: { messages: [{ role: 'user', content: [{ text: 'A sitting orange cat' }] }] },
      parameters: { size },
    }),
  });
  if (res.status !== 200) throw new Error(`generation answered ${res.status}: ${await res.text()}`);
  const body = (await res.json()) as { output: { choices: Array<{ message: { content: Array<{ image?: string }> } }> } };
  const url = body.output.choices[0]?.message.content.find((item) => item.image !== undefined)?.image;
  if (!url) throw new Error('no image in the answer');
  return url;
}

function downloadOptions(origin: string): DownloadOptions {
  const dispatcher = new Agent();
  closers.push(() => dispatcher.close());
  return { dispatcher, policy: imageHostPolicy(undefined, origin), maxBytes: 32 * 1024 * 1024, timeoutMs: 10_000 };
}

/** A loopback server answering every request with `handler`. */
async function startServer(handler: (res: ServerResponse) => void): Promise<string> {
  const server: Server = createServer((_req, res) => handler(res));
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  closers.push(
    () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  );
  return `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
}

async function downloadError(promise: Promise<unknown>): Promise<AppError> {
  const error = await promise.then(
    () => undefined,
    (e: unknown) => e,
  );
  if (!(error instanceof AppError)) throw new Error(`expected an AppError, got ${String(error)}`);
  return error;
}

const size512 = { width: 512, height: 512 };

describe('downloadImage', () => {
  it('downloads a whole PNG and returns the server clock', async () => {
    const emulator = await startEmulator();
    const before = Date.now();
    const image = await downloadImage(await generateImageUrl(emulator), size512, downloadOptions(emulator.url));
    expect(image).toMatchObject({ width: 512, height: 512 });
    // Date has whole seconds: the server's clock is this machine's, give or take that.
    expect(image.serverDateMs).toBeGreaterThan(before - 2_000);
    expect(image.serverDateMs).toBeLessThanOrEqual(Date.now());
  });

  it('compares the size with the reported one unless sizeReported is false', async () => {
    const emulator = await startEmulator();
    const url = await generateImageUrl(emulator, '768*512');
    const options = downloadOptions(emulator.url);
    const mismatch = await downloadError(downloadImage(url, size512, options));
    expect(mismatch.code).toBe('IMAGE_INVALID');
    expect(mismatch.message).toContain('768×512');
    const image = await downloadImage(url, { ...size512, sizeReported: false }, options);
    expect(image).toMatchObject({ width: 768, height: 512 });
  });

  it('gives IMAGE_URL_EXPIRED confirmed for an expired URL (403 AccessDenied "Request has expired.")', async () => {
    const emulator = await startEmulator(1);
    const url = await generateImageUrl(emulator);
    await delay(20);
    const error = await downloadError(downloadImage(url, size512, downloadOptions(emulator.url)));
    expect(error.code).toBe('IMAGE_URL_EXPIRED');
    expect(error.details).toMatchObject({ status: 403, ossCode: 'AccessDenied', ossMessage: 'Request has expired.', confirmed: true });
    expect(error.details['serverDateMs']).toEqual(expect.any(Number));
    expect(error.message).toContain('Request has expired.');
  });

  it('gives IMAGE_URL_EXPIRED confirmed for a removed object (404 NoSuchKey)', async () => {
    const emulator = await startEmulator();
    const error = await downloadError(
      downloadImage(`${emulator.url}/oss/zimage-emulator/no-such-image.png`, size512, downloadOptions(emulator.url)),
    );
    expect(error.code).toBe('IMAGE_URL_EXPIRED');
    expect(error.details).toMatchObject({ status: 404, ossCode: 'NoSuchKey', confirmed: true });
  });

  it('gives IMAGE_URL_EXPIRED unconfirmed for another 403 (SignatureDoesNotMatch)', async () => {
    const emulator = await startEmulator();
    const tampered = new URL(await generateImageUrl(emulator));
    tampered.searchParams.set('Expires', String(Number(tampered.searchParams.get('Expires')) + 3600));
    const error = await downloadError(downloadImage(tampered.href, size512, downloadOptions(emulator.url)));
    expect(error.code).toBe('IMAGE_URL_EXPIRED');
    expect(error.details).toMatchObject({ status: 403, ossCode: 'SignatureDoesNotMatch', confirmed: false });
  });

  it('reads only the first 8 KiB of an error body, then hangs up', async () => {
    let sentAll = false;
    let hungUp!: Promise<void>;
    const origin = await startServer((res) => {
      hungUp = new Promise((resolve) => res.once('close', resolve));
      res.on('error', () => {});
      res.writeHead(403, { 'content-type': 'application/xml' });
      res.write('<?xml version="1.0" encoding="UTF-8"?>\n<Error>\n  <Code>AccessDenied</Code>\n  <Message>Request has expired.</Message>\n');
      // 64 MiB of padding, bounded for the test's sake: far past the cap and the socket buffers, so
      // a reader without a cap would take it all and `sentAll` would become true.
      let left = 1024;
      const padding = Buffer.alloc(64 * 1024, 0x20);
      const pump = (): void => {
        while (left > 0 && !res.destroyed) {
          left--;
          if (!res.write(padding)) return void res.once('drain', pump);
        }
        if (left === 0 && !res.destroyed) {
          sentAll = true;
          res.end('</Error>\n');
        }
      };
      pump();
    });
    const error = await downloadError(downloadImage(`${origin}/x.png`, size512, downloadOptions(origin)));
    expect(error.details).toMatchObject({ status: 403, ossCode: 'AccessDenied', confirmed: true });
    await hungUp;
    expect(sentAll).toBe(false);
  });

  it('gives IMAGE_INVALID for a truncated PNG served with a matching Content-Length', async () => {
    const emulator = await startEmulator();
    const whole = Buffer.from(await (await fetch(await generateImageUrl(emulator))).arrayBuffer());
    const slice = whole.subarray(0, 200);
    const origin = await startServer((res) => {
      res.writeHead(200, { 'content-type': 'image/png', 'content-length': slice.length });
      res.end(slice);
    });
    const error = await downloadError(downloadImage(`${origin}/x.png`, size512, downloadOptions(origin)));
    expect(error.code).toBe('IMAGE_INVALID');
    expect(error.retry).toBe('transient');
    expect(error.message).toMatch(/truncated in chunk IDAT at byte 200/);
    expect(error.details['serverDateMs']).toEqual(expect.any(Number));
  });
});
