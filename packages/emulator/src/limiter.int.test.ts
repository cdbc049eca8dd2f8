import { setTimeout as delay } from 'node:timers/promises';
import { describe, expect, it } from 'vitest';
import type { Emulator } from './emulator.js';
import { GENERATION_PATH } from './handle-generation.js';
import type { ErrorBody } from './test-helpers.js';
import { generate, requestBody, startEmulator } from './test-helpers.js';

const RATE_QUOTA = { code: 'Throttling.RateQuota', message: 'Requests rate limit exceeded, please try again later.' };
const THROTTLING = { code: 'Throttling', message: 'Requests throttling triggered.' };

/** Fires `count` generation requests at once; returns the statuses (sorted) and the 429 bodies. */
async function burst(emulator: Emulator, count: number): Promise<{ statuses: number[]; throttled: ErrorBody[] }> {
  const responses = await Promise.all(Array.from({ length: count }, () => generate(emulator)));
  const throttled = await Promise.all(responses.filter((r) => r.status === 429).map((r) => r.json() as Promise<ErrorBody>));
  await Promise.all(responses.filter((r) => r.status !== 429).map((r) => r.arrayBuffer()));
  return { statuses: responses.map((r) => r.status).sort(), throttled };
}

const oks = (n: number, throttled: number): number[] => [...Array<number>(n).fill(200), ...Array<number>(throttled).fill(429)];

/** Resolves once the wall clock reaches `epochMs` (a limiter boundary), not after a fixed sleep. */
async function waitUntil(epochMs: number): Promise<void> {
  const left = epochMs - Date.now();
  if (left > 0) await delay(left);
}

/** Polls `condition` every 10 ms; fails after 5 s. */
async function until(condition: () => boolean): Promise<void> {
  const deadline = Date.now() + 5000;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error('condition not met within 5 s');
    await delay(10);
  }
}

function startedAt(emulator: Emulator): number {
  const start = emulator.limiter.startedAt;
  if (start === undefined) throw new Error('the limiter has not started');
  return start;
}

/**
 * counts(), the timeline and the stats all agree with what the client saw. For the window and
 * bucket models the capacity is a hard bound even over a short interval; the rate models
 * (per-second, concurrency, drift) can beat their sustainable rate with a first-second burst.
 */
function expectReport(emulator: Emulator, accepted: number, throttled: number): void {
  const start = startedAt(emulator);
  expect(emulator.limiter.counts()).toEqual({ accepted, throttled });
  expect(emulator.limiter.counts(start, Date.now() + 1)).toEqual({ accepted, throttled });
  expect(emulator.limiter.counts(0, start)).toEqual({ accepted: 0, throttled: 0 });
  const timeline = emulator.limiter.timeline(start, Date.now() + 1);
  expect(timeline[0]?.second).toBe(Math.floor(start / 1000));
  expect(timeline.reduce((sum, s) => sum + s.accepted, 0)).toBe(accepted);
  expect(timeline.reduce((sum, s) => sum + s.throttled, 0)).toBe(throttled);
  expect(emulator.stats()).toMatchObject({ accepted, throttled });
  if (['fixed-window', 'sliding-log', 'token-bucket'].includes(emulator.limiter.model)) {
    expect(accepted).toBeLessThanOrEqual(emulator.limiter.capacity(start, Date.now() + 1));
  }
}

describe('limiter models over HTTP', () => {
  it('per-second (default): reports its counts and the sustainable rate as capacity', async () => {
    // The rpm binds (rps unlimited), so the burst does not have to land within one second.
    const emulator = await startEmulator({ quota: { rps: Infinity, rpm: 2 } });
    expect(emulator.limiter.model).toBe('per-second');
    expect(emulator.limiter.startedAt).toBeUndefined();
    const before = Date.now();
    const { statuses, throttled } = await burst(emulator, 3);
    expect(statuses).toEqual(oks(2, 1));
    expect(throttled).toEqual([expect.objectContaining(RATE_QUOTA)]);
    expect(startedAt(emulator)).toBeGreaterThanOrEqual(before);
    expect(startedAt(emulator)).toBeLessThanOrEqual(Date.now());
    expectReport(emulator, 2, 1);
    expect(emulator.limiter.capacity(before, before + 30_000)).toBeCloseTo(1, 6);
    expect(emulator.limiter.timeline(before, before + 1)[0]?.quotaRpm).toBe(2);
    emulator.configure({ quota: { rps: 2, rpm: 600 } }); // read live: now the rps binds
    expect(emulator.limiter.capacity(before, before + 30_000)).toBeCloseTo(60, 6);
  });

  it('fixed-window: the limit per window, then a reset at the boundary aligned to the start', async () => {
    const emulator = await startEmulator({ quota: { model: 'fixed-window', rpm: 90, windowMs: 2000 } }); // 3 per window
    const first = await burst(emulator, 5);
    expect(first.statuses).toEqual(oks(3, 2));
    expect(first.throttled).toEqual([expect.objectContaining(RATE_QUOTA), expect.objectContaining(RATE_QUOTA)]);
    const start = startedAt(emulator);
    await waitUntil(start + 2000);
    const second = await burst(emulator, 4);
    expect(second.statuses).toEqual(oks(3, 1));
    expectReport(emulator, 6, 3);
    expect(emulator.limiter.capacity(start, start + 2000)).toBe(3);
    expect(emulator.limiter.capacity(start - 5000, start + 4000)).toBe(6); // nothing before the start
    expect(emulator.limiter.capacity(start + 1000, start + 3000)).toBe(6); // straddles a boundary
    expect(emulator.limiter.timeline(start, start + 1)[0]?.quotaRpm).toBe(90);
  });

  it('sliding-log: at most the limit in the trailing window, freed when the oldest leaves it', async () => {
    const emulator = await startEmulator({ quota: { model: 'sliding-log', rpm: 60, windowMs: 2000 } }); // 2 per 2 s
    const sent = Date.now();
    expect((await burst(emulator, 3)).statuses).toEqual(oks(2, 1));
    const again = await burst(emulator, 1);
    expect(again.statuses).toEqual([429]);
    expect(again.throttled[0]).toMatchObject(RATE_QUOTA);
    const start = startedAt(emulator);
    expect(start).toBeGreaterThanOrEqual(sent);
    // Both accepted requests arrived before `answered`; 2 s later they have left the window.
    const answered = Date.now();
    await waitUntil(answered + 2000);
    expect((await burst(emulator, 1)).statuses).toEqual([200]);
    expectReport(emulator, 3, 2);
    expect(emulator.limiter.capacity(start, start + 2000)).toBe(2);
    expect(emulator.limiter.capacity(start, start + 2001)).toBe(4);
  });

  it('token-bucket: a full bucket bursts, then refills at rpm / 60 per second', async () => {
    const emulator = await startEmulator({ quota: { model: 'token-bucket', rpm: 30, bucketSize: 3 } }); // a token per 2 s
    const first = await burst(emulator, 5);
    expect(first.statuses).toEqual(oks(3, 2));
    expect(first.throttled.map((b) => b.code)).toEqual(['Throttling.RateQuota', 'Throttling.RateQuota']);
    const start = startedAt(emulator);
    await waitUntil(start + 2100); // ≥ 1 token refilled
    expect((await generate(emulator)).status).toBe(200);
    const empty = await generate(emulator); // ~0.05 token left
    expect(empty.status).toBe(429);
    expect(((await empty.json()) as ErrorBody).code).toBe('Throttling.RateQuota');
    expectReport(emulator, 4, 3);
    expect(emulator.limiter.capacity(start, start + 4000)).toBeCloseTo(5, 6);
  });

  it('concurrency: Throttling at maxInFlight whatever the rate, and the slots come back', async () => {
    const emulator = await startEmulator({
      quota: { model: 'concurrency', maxInFlight: 2, rps: Infinity, rpm: Infinity },
      latency: { minMs: 1500, maxMs: 1500 }, // the burst must arrive while the first two are in flight
    });
    const capped = await burst(emulator, 4);
    expect(capped.statuses).toEqual(oks(2, 2));
    expect(capped.throttled).toEqual([expect.objectContaining(THROTTLING), expect.objectContaining(THROTTLING)]);
    expect(emulator.stats().throttledByCode).toEqual({ Throttling: 2 });
    // Both slots were freed when the answers went out.
    emulator.configure({ latency: { minMs: 0, maxMs: 0 } });
    expect((await burst(emulator, 2)).statuses).toEqual([200, 200]);
    expectReport(emulator, 4, 2);
    const start = startedAt(emulator);
    emulator.configure({ latency: { minMs: 100, maxMs: 300 } });
    expect(emulator.limiter.capacity(start, start + 60_000)).toBeCloseTo(600, 6); // 2 slots / 0.2 s
    emulator.configure({ quota: { rpm: 120 } }); // now the rate rule binds (read live)
    expect(emulator.limiter.capacity(start, start + 60_000)).toBeCloseTo(120, 6);
  });

  it('concurrency: faults, drops, gateway pages and clients that hang up all free their slot', async () => {
    const emulator = await startEmulator({
      quota: { model: 'concurrency', maxInFlight: 2, rps: Infinity, rpm: Infinity },
      latency: { minMs: 1500, maxMs: 1500 },
    });
    emulator.failNext('InternalError', 'gateway502');
    const faulted = await Promise.all([1, 2, 3, 4, 5].map(() => generate(emulator)));
    // The first two took the slots (failing after the latency); the other three found them taken.
    expect(faulted.map((r) => r.status).sort()).toEqual([429, 429, 429, 500, 502]);
    // Answered at once, dropped, billed then dropped, moderated: one at a time, each frees its slot.
    emulator.configure({ latency: { minMs: 0, maxMs: 0 } });
    emulator.failNext('ModelUnavailable', 'drop', 'dropAfterBilling');
    for (let i = 0; i < 3; i++) await generate(emulator).then((r) => r.arrayBuffer()).catch(() => undefined);
    expect((await generate(emulator, requestBody('zimage-test-unsafe'))).status).toBe(400);
    expect((await burst(emulator, 2)).statuses).toEqual([200, 200]);
    // Clients that hang up during the latency: their slots stay taken until the generation ends.
    emulator.configure({ latency: { minMs: 1500, maxMs: 1500 } });
    const hangUp = new AbortController();
    const gone = [1, 2].map(() =>
      fetch(emulator.url + GENERATION_PATH, {
        method: 'POST',
        headers: { authorization: 'Bearer sk-test', 'content-type': 'application/json' },
        body: JSON.stringify(requestBody()),
        signal: hangUp.signal,
      }).catch(() => undefined),
    );
    const acceptedBefore = emulator.limiter.counts().accepted;
    await until(() => emulator.limiter.counts().accepted === acceptedBefore + 2);
    hangUp.abort();
    await Promise.all(gone);
    await until(() => emulator.stats().inFlight === 0);
    const whileGenerating = await generate(emulator);
    expect(whileGenerating.status).toBe(429);
    expect(await whileGenerating.json()).toMatchObject(THROTTLING);
    // Then both come back, and nothing leaked.
    await until(() => emulator.stats().clientDisconnects === 2);
    expect((await burst(emulator, 3)).statuses).toEqual(oks(2, 1)); // two free slots, still a cap of 2
  });

  it('concurrency: the rate rule still applies under the cap', async () => {
    const emulator = await startEmulator({ quota: { model: 'concurrency', maxInFlight: 10, rps: Infinity, rpm: 2 } });
    const { statuses, throttled } = await burst(emulator, 3);
    expect(statuses).toEqual(oks(2, 1));
    expect(throttled[0]).toMatchObject(RATE_QUOTA);
  });

  it('drift: the quota follows the schedule from the start, in the report too', async () => {
    // Slow rates, so no burst has to land within one second: 1 per 2 s, then from 2 s 1 per 1.5 s.
    const emulator = await startEmulator({ quota: { model: 'drift', drift: [{ atMs: 0, rpm: 30 }, { atMs: 2000, rpm: 40 }] } });
    const first = await burst(emulator, 3);
    expect(first.statuses).toEqual(oks(1, 2));
    expect(first.throttled.map((b) => b.code)).toEqual(['Throttling.RateQuota', 'Throttling.RateQuota']);
    const start = startedAt(emulator);
    await waitUntil(start + 2050);
    expect((await burst(emulator, 2)).statuses).toEqual(oks(1, 1));
    // 1.55 s later: allowed at 40/min (1 per 1.5 s), which the first step (1 per 2 s) would refuse.
    await waitUntil(Date.now() + 1550);
    expect((await burst(emulator, 1)).statuses).toEqual([200]);
    expectReport(emulator, 3, 3);
    expect(emulator.limiter.capacity(start, start + 2000)).toBeCloseTo(1, 10);
    expect(emulator.limiter.capacity(start, start + 5000)).toBeCloseTo(3, 10);
    const timeline = emulator.limiter.timeline(start, Date.now());
    expect(timeline[0]?.quotaRpm).toBe(30);
    expect(timeline.at(-1)?.quotaRpm).toBe(40);
  });

  it('configure() rebuilds the limiter on a new model, but not on other quota fields', async () => {
    const emulator = await startEmulator({ quota: { rpm: 1 } });
    expect((await burst(emulator, 2)).statuses).toEqual(oks(1, 1));
    emulator.configure({ quota: { retryAfterSeconds: 3 } });
    expect(emulator.limiter.counts()).toEqual({ accepted: 1, throttled: 1 });

    emulator.configure({ quota: { model: 'fixed-window', windowMs: 60_000, rpm: 2 } });
    expect(emulator.limiter.model).toBe('fixed-window');
    expect(emulator.limiter.startedAt).toBeUndefined();
    expect(emulator.limiter.counts()).toEqual({ accepted: 0, throttled: 0 });
    const fresh = await burst(emulator, 3);
    expect(fresh.statuses).toEqual(oks(2, 1)); // the per-second history is gone
    expect(emulator.limiter.counts()).toEqual({ accepted: 2, throttled: 1 });

    emulator.configure({ quota: { windowMs: 30_000 } });
    expect(emulator.limiter.counts()).toEqual({ accepted: 0, throttled: 0 });
    expect(() => emulator.configure({ quota: { maxInFlight: 0 } })).toThrow('quota.maxInFlight');
  });
});
