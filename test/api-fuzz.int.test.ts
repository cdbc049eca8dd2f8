/**
 * Fuzzing the HTTP API: thousands of random and malformed bodies, headers and query strings. Every
 * body is built to be invalid (each object carries an impossible `size`), so the assertions are:
 * never a 5xx, always our error shape, and not one job enqueued.
 */
import { describe, expect, it } from 'vitest';
import { startApi, TOKEN } from './support/api-harness.js';
import { mulberry32 } from './support/seeded-random.js';

const SEED = Number(process.env['FUZZ_SEED'] ?? 20261123);
const REQUESTS = 2_200;

describe('HTTP API fuzz', () => {
  it(`answers ${REQUESTS} random malformed requests with 4xx (never 5xx) and enqueues nothing (seed ${SEED})`, async () => {
    await using api = await startApi({ worker: false }, { maxBodyBytes: 256 * 1024 });
    const random = mulberry32(SEED);
    const pick = <T>(items: readonly T[]): T => items[Math.floor(random() * items.length)] as T;
    const int = (max: number) => Math.floor(random() * max);

    const strings = ['', ' ', 'x', '🙂', '一只猫', '\u0000', '\u202e', 'a'.repeat(900), '../../etc/passwd', '{sku}', '%00', '<script>', 'null', '1e309', '-0', 'NaN', "'; DROP TABLE", '\\', '"'];
    const badSizes = ['1*1', '0*0', '99999*99999', 'big', '512x', '*', -1, 3.5, null, true, [], {}, '512*512*512', '2049*2049'];
    const keys = ['prompt', 'seed', 'size', 'aspect', 'tier', 'key', 'metadata', 'webhook', 'priority', 'deadline', 'idempotencyKey', 'promptExtend', 'batchId', '__proto__', 'constructor', 'x', ''];

    function value(depth: number): unknown {
      switch (int(depth > 3 ? 5 : 8)) {
        case 0:
          return pick(strings);
        case 1:
          return pick([0, -1, 1.5, 2 ** 31, -(2 ** 53), Number.MAX_SAFE_INTEGER, 1e308]);
        case 2:
          return pick([true, false, null]);
        case 3:
          return pick(badSizes);
        case 4:
          return String.fromCharCode(...Array.from({ length: int(20) }, () => int(0x3000)));
        case 5:
          return Array.from({ length: int(4) }, () => value(depth + 1));
        default:
          return object(depth + 1);
      }
    }
    function object(depth: number): Record<string, unknown> {
      const o: Record<string, unknown> = {};
      for (let i = int(5); i > 0; i--) o[pick(keys)] = value(depth);
      o['size'] = pick(badSizes); // what makes every request invalid
      return o;
    }
    function body(): { raw: string; type: string } {
      const kind = int(9);
      if (kind === 0) return { raw: JSON.stringify(object(0)), type: 'application/json' };
      if (kind === 1) return { raw: JSON.stringify(Array.from({ length: int(5) + 1 }, () => object(1))), type: 'application/json' };
      if (kind === 2) return { raw: JSON.stringify(value(0)), type: 'application/json' };
      if (kind === 3) return { raw: JSON.stringify(object(0)).slice(0, int(40)), type: 'application/json' };
      if (kind === 4) return { raw: Array.from({ length: int(4) + 1 }, () => JSON.stringify(random() < 0.8 ? object(1) : value(1))).join('\n'), type: 'application/x-ndjson' };
      if (kind === 5) {
        const rows = Array.from({ length: int(4) }, () => `${pick(strings).replace(/[\n\r]/g, '')},${String(pick(badSizes))}`);
        return { raw: ['prompt,size', ...rows].join('\n'), type: 'text/csv' };
      }
      if (kind === 6) return { raw: Buffer.from(Array.from({ length: int(200) }, () => int(256))).toString('latin1'), type: pick(['application/json', 'text/csv', 'application/x-ndjson']) };
      if (kind === 7) return { raw: 'a=1&b=2', type: pick(['application/x-www-form-urlencoded', 'text/plain', 'multipart/form-data; boundary=x', 'application/json; charset=utf-16', 'garbage']) };
      return { raw: `{"prompt":"${'x'.repeat(int(2) ? 10 : 300_000)}","size":"1*1"}`, type: 'application/json' };
    }
    const query = () =>
      int(3) === 0
        ? ''
        : `?${Array.from({ length: int(4) + 1 }, () => `${encodeURIComponent(pick(['size', 'key', 'priority', 'promptTemplate', 'webhook', 'a[b]', 'batchId', '__proto__', 'deadline', 'x']))}=${encodeURIComponent(JSON.stringify(pick([...strings, ...badSizes])))}`).join('&')}${pick(['', '&', '&&', '&=', '&size', '%'])}`;
    const path = () =>
      pick([
        '/v1/jobs',
        '/v1/batches',
        `/v1/jobs/${encodeURIComponent(JSON.stringify(value(3)) ?? "x")}`,
        `/v1/batches/${encodeURIComponent(pick(strings))}`,
        `/v1/batches/${pick(['b_x', '..', '%2e%2e', 'a'.repeat(300)])}/results`,
        `/v1/batches/${pick(['b_x', 'zz'])}/cancel`,
        '/v1/schedules/x',
        '/v1//jobs',
        '/%ff',
        '/healthz',
      ]);

    const statuses = new Map<number, number>();
    const failures: string[] = [];
    const one = async (i: number) => {
      const method = pick(['GET', 'POST', 'POST', 'POST', 'DELETE', 'PUT', 'PATCH']);
      const headers: Record<string, string> = {};
      if (random() < 0.9) headers['authorization'] = pick([`Bearer ${TOKEN}`, `Bearer ${TOKEN}`, `Bearer ${TOKEN}`, 'Bearer', `Basic ${Buffer.from(`u:${TOKEN}`).toString('base64')}`, 'Basic !!!', `bearer ${TOKEN} extra`]);
      if (random() < 0.3) headers['idempotency-key'] = pick(['k1', 'k2', 'x'.repeat(300), 'é', '']);
      const b = method === 'GET' || method === 'DELETE' ? undefined : body();
      if (b) headers['content-type'] = b.type;
      const target = `${path()}${query()}`;
      try {
        const response = await fetch(`${api.url}${target}`, { method, headers, ...(b ? { body: b.raw } : {}) });
        const text = await response.text();
        statuses.set(response.status, (statuses.get(response.status) ?? 0) + 1);
        if (response.status >= 500) failures.push(`#${i} ${method} ${target} → ${response.status} ${text.slice(0, 200)}`);
        else if (response.status >= 400 && !/"error":\{"code":"[A-Z_]+"/.test(text)) failures.push(`#${i} ${method} ${target} → ${response.status} without an error body: ${text.slice(0, 100)}`);
      } catch (error) {
        failures.push(`#${i} ${method} ${target} → ${(error as Error).message}`);
      }
    };
    for (let i = 0; i < REQUESTS; i += 8) await Promise.all(Array.from({ length: Math.min(8, REQUESTS - i) }, (_, j) => one(i + j)));

    expect(failures).toEqual([]);
    expect([...statuses.values()].reduce((a, b) => a + b, 0)).toBe(REQUESTS);
    expect([...statuses.keys()].every((s) => s < 500)).toBe(true);
    expect(await api.stack.producer.queue.count()).toBe(0);
    expect(await api.stack.redis.keys(`${api.stack.prefix}:batch:*`)).toEqual([]);
  });
});
