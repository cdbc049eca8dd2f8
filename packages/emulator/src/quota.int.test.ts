import { setTimeout as delay } from 'node:timers/promises';
import { describe, expect, it } from 'vitest';
import type { ErrorBody } from './test-helpers.js';
import { generate, startEmulator } from './test-helpers.js';

const statuses = (responses: Response[]): number[] => responses.map((r) => r.status);

describe('quota', () => {
  it('throttles above rps and rpm with 429 Throttling.RateQuota, counting only accepted requests', async () => {
    const emulator = await startEmulator({ quota: { rps: 2, rpm: 5 } });
    // Second 1: two pass, the third is over 2/s.
    expect(statuses(await Promise.all([generate(emulator), generate(emulator), generate(emulator)])).sort()).toEqual([200, 200, 429]);
    await delay(1100);
    // Second 2: two more (4 in the minute), the third is over 2/s again.
    expect(statuses(await Promise.all([generate(emulator), generate(emulator), generate(emulator)])).sort()).toEqual([200, 200, 429]);
    await delay(1100);
    // Second 3: one more reaches 5 in the minute; the next is over the rpm although under the rps.
    expect((await generate(emulator)).status).toBe(200);
    const overMinute = await generate(emulator);
    expect(overMinute.status).toBe(429);
    expect(overMinute.headers.get('retry-after')).toBeNull();
    const body = (await overMinute.json()) as ErrorBody;
    expect(body).toMatchObject({
      code: 'Throttling.RateQuota',
      message: 'Requests rate limit exceeded, please try again later.',
    });
    expect(overMinute.headers.get('x-request-id')).toBe(body.request_id);

    expect(emulator.stats()).toMatchObject({
      requests: 8,
      accepted: 5,
      throttled: 3,
      throttledByCode: { 'Throttling.RateQuota': 3 },
      errorsByCode: { 'Throttling.RateQuota': 3 },
      imagesGenerated: 5,
      peakRequestsPerSecond: 3,
      peakAcceptedPerSecond: 2,
      peakAcceptedPerMinute: 5,
      peakRequestsPerMinute: 8,
    });
  });

  it('rejects a sudden ramp with Throttling.BurstRate while under the rps limit', async () => {
    // A burst floor of 5/s; the cold baseline is 0, so the 6th request in one second is a burst
    // although 10/s would allow it.
    const emulator = await startEmulator({ quota: { rps: 10, rpm: 600, burst: { enabled: true, floorPerSecond: 5 } } });
    const responses = await Promise.all(Array.from({ length: 7 }, () => generate(emulator)));
    expect(statuses(responses).sort()).toEqual([200, 200, 200, 200, 200, 429, 429]);
    const rejected = responses.filter((r) => r.status === 429);
    for (const res of rejected) {
      expect(((await res.json()) as ErrorBody).code).toBe('Throttling.BurstRate');
    }
    expect(emulator.stats()).toMatchObject({ accepted: 5, throttled: 2, throttledByCode: { 'Throttling.BurstRate': 2 } });
  });

  it('lets the same requests through when the burst guard is off', async () => {
    const emulator = await startEmulator({ quota: { rps: 10, rpm: 600, burst: { enabled: false } } });
    const responses = await Promise.all(Array.from({ length: 7 }, () => generate(emulator)));
    expect(statuses(responses)).toEqual(Array(7).fill(200));
  });

  it('sends Retry-After on 429s only when configured', async () => {
    const emulator = await startEmulator({ quota: { rps: 1, retryAfterSeconds: 7 } });
    expect((await generate(emulator)).status).toBe(200);
    const throttled = await generate(emulator);
    expect(throttled.status).toBe(429);
    expect(throttled.headers.get('retry-after')).toBe('7');

    emulator.configure({ quota: { retryAfterSeconds: undefined } });
    const again = await generate(emulator);
    expect(again.status).toBe(429);
    expect(again.headers.get('retry-after')).toBeNull();
  });

  it('can lift the limits at runtime with Infinity', async () => {
    const emulator = await startEmulator({ quota: { rps: 1 } });
    expect((await generate(emulator)).status).toBe(200);
    expect((await generate(emulator)).status).toBe(429);
    emulator.configure({ quota: { rps: Infinity } });
    expect((await generate(emulator)).status).toBe(200);
  });
});
