import { describe, expect, it } from 'vitest';
import { GENERATION_PATH } from './handle-generation.js';
import type { ErrorBody } from './test-helpers.js';
import { generate, requestBody, startEmulator } from './test-helpers.js';

describe('trigger words', () => {
  it('rejects a prompt containing a DataInspectionFailed trigger word, case-insensitively, unbilled', async () => {
    const emulator = await startEmulator();
    const res = await generate(emulator, requestBody('A cat, ZIMAGE-TEST-UNSAFE edition'));
    expect(res.status).toBe(400);
    expect(await res.json()).toMatchObject({
      code: 'DataInspectionFailed',
      message: 'Input data may contain inappropriate content.',
    });
    expect(emulator.stats()).toMatchObject({ imagesGenerated: 0, billedUsd: 0, accepted: 1 });
  });

  it('rejects an IP trigger word with IPInfringementSuspect and honours configured words', async () => {
    const emulator = await startEmulator();
    const ip = await generate(emulator, requestBody('zimage-test-ip mouse'));
    expect(ip.status).toBe(400);
    expect(((await ip.json()) as ErrorBody).code).toBe('IPInfringementSuspect');

    emulator.configure({ faults: { triggerWords: { DataInspectionFailed: ['forbidden fruit'] } } });
    expect((await generate(emulator, requestBody('zimage-test-unsafe'))).status).toBe(200);
    expect((await generate(emulator, requestBody('A Forbidden Fruit'))).status).toBe(400);
    expect(emulator.stats().imagesGenerated).toBe(1);
  });
});

describe('scripted faults', () => {
  it('applies failNext steps in order to the next requests, then goes back to normal', async () => {
    const emulator = await startEmulator();
    emulator.failNext('InternalError', 'none', 'ModelUnavailable', 'Arrearage', 'Throttling');
    const seen: Array<[number, string | undefined]> = [];
    for (let i = 0; i < 6; i++) {
      const res = await generate(emulator);
      const body = (await res.json()) as Partial<ErrorBody>;
      seen.push([res.status, body.code]);
    }
    expect(seen).toEqual([
      [500, 'InternalError'],
      [200, undefined],
      [503, 'ModelUnavailable'],
      [400, 'Arrearage'],
      [429, 'Throttling'],
      [200, undefined],
    ]);
    expect(emulator.stats()).toMatchObject({
      imagesGenerated: 2,
      throttled: 0,
      errorsByCode: { InternalError: 1, ModelUnavailable: 1, Arrearage: 1, Throttling: 1 },
    });
  });

  it('does not spend a scripted step on a request rejected before the fault stage', async () => {
    const emulator = await startEmulator();
    emulator.failNext('InternalError');
    expect((await generate(emulator, requestBody(), { authorization: 'Bearer bad' })).status).toBe(401);
    expect((await generate(emulator, requestBody('zimage-test-unsafe'))).status).toBe(400);
    expect((await generate(emulator)).status).toBe(500);
  });

  it("'drop' destroys the socket without an answer and bills nothing", async () => {
    const emulator = await startEmulator();
    emulator.failNext('drop');
    await expect(generate(emulator)).rejects.toThrow();
    expect(emulator.stats()).toMatchObject({ requests: 1, dropped: 1, imagesGenerated: 0, billedUsd: 0 });
    expect((await generate(emulator)).status).toBe(200);
  });

  it("'dropAfterBilling' destroys the socket after billing the image", async () => {
    const emulator = await startEmulator();
    emulator.failNext('dropAfterBilling');
    await expect(generate(emulator)).rejects.toThrow();
    expect(emulator.stats()).toMatchObject({ requests: 1, dropped: 1, imagesGenerated: 1, billedUsd: 0.015 });
  });

  it.each([
    ['gateway502', 502],
    ['gateway504', 504],
  ] as const)('%s answers an HTML page that is not JSON', async (kind, status) => {
    const emulator = await startEmulator();
    emulator.failNext(kind);
    const res = await generate(emulator);
    expect(res.status).toBe(status);
    expect(res.headers.get('content-type')).toMatch(/^text\/html/);
    const text = await res.text();
    expect(text).toContain(`<title>${status}`);
    expect(() => JSON.parse(text) as unknown).toThrow();
    expect(emulator.stats()).toMatchObject({ imagesGenerated: 0, errorsByCode: { [`Gateway${status}`]: 1 } });
  });

  it("'slow' waits slowMs before answering successfully", async () => {
    const emulator = await startEmulator({ faults: { slowMs: 300 } });
    emulator.failNext('slow');
    const started = performance.now();
    expect((await generate(emulator)).status).toBe(200);
    expect(performance.now() - started).toBeGreaterThanOrEqual(295);
  });

  it('rejects unknown fault kinds', async () => {
    const emulator = await startEmulator();
    expect(() => emulator.failNext('Teapot' as never)).toThrow(TypeError);
    expect(() => emulator.configure({ faults: { rates: { Teapot: 1 } as never } })).toThrow(RangeError);
    expect(() => emulator.configure({ faults: { rates: { InternalError: 1.5 } } })).toThrow(RangeError);
  });
});

describe('fault rates', () => {
  async function outcomes(randomSeed: number): Promise<number[]> {
    const emulator = await startEmulator({ randomSeed, faults: { rates: { InternalError: 0.3, ModelServingError: 0.2 } } });
    const result: number[] = [];
    for (let i = 0; i < 30; i++) result.push((await generate(emulator)).status);
    return result;
  }

  it('draws faults at the configured rates, reproducibly for a given randomSeed', async () => {
    const first = await outcomes(1234);
    expect(await outcomes(1234)).toEqual(first);
    expect(first).toContain(200);
    expect(first).toContain(500);
    expect(first).toContain(503);
    expect(await outcomes(99)).not.toEqual(first);
  });

  it('fails every request at rate 1 and none at rate 0', async () => {
    const emulator = await startEmulator({ faults: { rates: { 'InternalError.Algo': 1 } } });
    const res = await generate(emulator);
    expect(res.status).toBe(500);
    expect(((await res.json()) as ErrorBody).code).toBe('InternalError.Algo');
    emulator.configure({ faults: { rates: { 'InternalError.Algo': 0 } } });
    expect((await generate(emulator)).status).toBe(200);
  });
});

describe('close', () => {
  it('does not hang with a slow request in flight, and abandons it unbilled', async () => {
    const emulator = await startEmulator({ faults: { slowMs: 30_000 } });
    emulator.failNext('slow');
    const pending = generate(emulator);
    pending.catch(() => undefined);
    while (emulator.stats().inFlight === 0) await new Promise((r) => setTimeout(r, 5));

    const started = performance.now();
    await emulator.close();
    expect(performance.now() - started).toBeLessThan(1000);
    await expect(pending).rejects.toThrow();
    expect(emulator.stats()).toMatchObject({ imagesGenerated: 0, inFlight: 0 });
    await emulator.close(); // idempotent
    await expect(generate(emulator)).rejects.toThrow();
  });
});

describe('clients that hang up', () => {
  async function abortDuringLatency(fault?: 'InternalError' | 'gateway502'): Promise<void> {
    const emulator = await startEmulator({ latency: { minMs: 200, maxMs: 200 } });
    if (fault) emulator.failNext(fault);
    const controller = new AbortController();
    const pending = fetch(emulator.url + GENERATION_PATH, {
      method: 'POST',
      headers: { authorization: 'Bearer sk-test', 'content-type': 'application/json' },
      body: JSON.stringify(requestBody()),
      signal: controller.signal,
    });
    pending.catch(() => undefined);
    while (emulator.stats().inFlight === 0) await new Promise((r) => setTimeout(r, 5));
    controller.abort();
    await expect(pending).rejects.toThrow();
    await new Promise((r) => setTimeout(r, 350));
    const stats = emulator.stats();
    expect(stats.inFlight).toBe(0);
    if (fault) {
      expect(stats).toMatchObject({ imagesGenerated: 0, clientDisconnects: 0 });
    } else {
      // Upstream finishes and bills a request whose client timed out.
      expect(stats).toMatchObject({ imagesGenerated: 1, clientDisconnects: 1 });
    }
    expect((await generate(emulator)).status).toBe(200); // still serving
  }

  it('still bills a generation whose client disconnected during the wait', () => abortDuringLatency());
  it('survives answering an error to a client that is gone', () => abortDuringLatency('InternalError'));
  it('survives a gateway fault for a client that is gone', () => abortDuringLatency('gateway502'));
});
