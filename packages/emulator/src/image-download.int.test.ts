import { setTimeout as delay } from 'node:timers/promises';
import { describe, expect, it } from 'vitest';
import type { EmulatorStats } from './stats.js';
import { generate, generateOk, imageUrlOf, startEmulator } from './test-helpers.js';

async function expectOssError(res: Response, code: string, message?: string): Promise<void> {
  expect(res.status).toBe(403);
  expect(res.headers.get('content-type')).toBe('application/xml');
  const xml = await res.text();
  expect(xml).toContain(`<Code>${code}</Code>`);
  if (message !== undefined) expect(xml).toContain(`<Message>${message}</Message>`);
}

describe('image URLs', () => {
  it('answers 403 AccessDenied "Request has expired." once the TTL has passed', async () => {
    const emulator = await startEmulator({ imageTtlMs: 1 });
    const url = imageUrlOf(await generateOk(emulator));
    await delay(10);
    await expectOssError(await fetch(url), 'AccessDenied', 'Request has expired.');
    expect(emulator.stats()).toMatchObject({ downloads: 0, downloadsRejected: 1 });
  });

  it('answers 403 SignatureDoesNotMatch for a tampered or missing signature', async () => {
    const emulator = await startEmulator();
    const url = new URL(imageUrlOf(await generateOk(emulator)));

    const tampered = new URL(url);
    tampered.searchParams.set('Expires', String(Number(url.searchParams.get('Expires')) + 3600));
    await expectOssError(await fetch(tampered), 'SignatureDoesNotMatch');

    const unsigned = new URL(url);
    unsigned.searchParams.delete('Signature');
    await expectOssError(await fetch(unsigned), 'SignatureDoesNotMatch');

    const otherImage = new URL(url);
    otherImage.pathname = otherImage.pathname.replace(/-s(\d+)-/, '-s1$1-');
    await expectOssError(await fetch(otherImage), 'SignatureDoesNotMatch');

    expect((await fetch(url)).status).toBe(200);
    expect(emulator.stats()).toMatchObject({ downloads: 1, downloadsRejected: 3 });
  });

  it('answers 404 NoSuchKey for a path that is no image', async () => {
    const emulator = await startEmulator();
    const res = await fetch(`${emulator.url}/oss/zimage-emulator/nothing.png`);
    expect(res.status).toBe(404);
    expect(await res.text()).toContain('<Code>NoSuchKey</Code>');
  });
});

describe('stats endpoint', () => {
  it('serves the stats as JSON and resets them on POST', async () => {
    const emulator = await startEmulator();
    await generateOk(emulator);
    await generate(emulator, { model: 'nope' });
    const res = await fetch(`${emulator.url}/__emulator/stats`);
    expect(res.status).toBe(200);
    const stats = (await res.json()) as EmulatorStats;
    expect(stats).toEqual(emulator.stats());
    expect(stats).toMatchObject({
      requests: 2,
      accepted: 1,
      imagesGenerated: 1,
      billedUsd: 0.015,
      errorsByCode: { InvalidParameter: 1 },
      inFlight: 0,
      peakInFlight: 1,
    });
    expect(Number.isNaN(Date.parse(stats.startedAt))).toBe(false);

    expect((await fetch(`${emulator.url}/__emulator/reset`, { method: 'POST' })).status).toBe(204);
    expect(emulator.stats()).toMatchObject({ requests: 0, imagesGenerated: 0, billedUsd: 0, errorsByCode: {} });
    expect((await fetch(`${emulator.url}/__emulator/reset`)).status).toBe(405);
  });

  it('returns a copy that later requests do not change', async () => {
    const emulator = await startEmulator();
    const before = emulator.stats();
    await generate(emulator, { model: 'nope' });
    expect(before.requests).toBe(0);
    expect(before.errorsByCode).toEqual({});
  });
});
