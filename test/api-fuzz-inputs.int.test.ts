/**
 * Fuzzing the two endpoints that take paths and URLs: PUT /v1/schedules/:id and POST
 * /v1/batches, with generated bodies full of hostile paths (climbing out, absolute, a link out of
 * the folder, NUL bytes, encodings), URLs (metadata, loopback, file:, other schemes) and
 * oversized values. Asserted: never a 5xx, always our error shape, and not one byte read of a
 * canary file outside ZIMAGE_SCHEDULE_FILES_DIR — judged by its access time (the test first
 * proves that a read moves it on this file system, so the check cannot pass vacuously) and by
 * its content never showing up in an answer.
 */
import { mkdtempSync, readFileSync, rmSync, statSync, symlinkSync, utimesSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { startApi, TOKEN } from './support/api-harness.js';
import { mulberry32 } from './support/seeded-random.js';

const SEED = Number(process.env['FUZZ_SEED'] ?? 20261202);
const SCHEDULE_BODIES = 1_200;
const BATCH_BODIES = 1_000;
const CANARY = 'CANARY-7c1d0e9b2a';

describe('HTTP API fuzz: paths, URLs and oversized values', () => {
  it(`answers ${SCHEDULE_BODIES} PUT /v1/schedules and ${BATCH_BODIES} POST /v1/batches bodies without a 5xx, and reads no file outside the schedule folder (seed ${SEED})`, async () => {
    const folder = mkdtempSync(join(tmpdir(), 'zimage-fuzz-files-'));
    const outside = mkdtempSync(join(tmpdir(), 'zimage-fuzz-outside-'));
    const canary = join(outside, 'secret.csv');
    writeFileSync(canary, `sku,title\n${CANARY},${CANARY}\n`);
    writeFileSync(join(folder, 'products.csv'), 'sku,title\nP-1,a lamp\n');
    symlinkSync(canary, join(folder, 'link.csv'));
    symlinkSync(outside, join(folder, 'out'));
    // relatime moves the access time on a read when it is older than the modification time.
    const arm = () => utimesSync(canary, new Date('2001-01-01T00:00:00Z'), new Date());
    const read = () => statSync(canary).atimeMs > Date.parse('2002-01-01T00:00:00Z');
    arm();
    readFileSync(canary);
    expect(read(), 'this file system must record reads (atime) for the check to mean anything').toBe(true);
    arm();
    expect(read()).toBe(false);

    await using api = await startApi({ worker: false }, { scheduleFilesDir: folder, maxBodyBytes: 256 * 1024 });
    const random = mulberry32(SEED);
    const pick = <T>(items: readonly T[]): T => items[Math.floor(random() * items.length)] as T;
    const int = (max: number) => Math.floor(random() * max);
    const rel = outside.slice(tmpdir().length + 1);

    const paths = [
      'products.csv', './products.csv', 'secret.csv', 'link.csv', 'out/secret.csv', `../${rel}/secret.csv`, canary, `${folder}/../${rel}/secret.csv`,
      '/etc/passwd', '/proc/self/environ', '/dev/zero', '..', '.', '', 'products.csv\u0000.txt', '%2e%2e/secret.csv', 'products.csv/', '\\\\server\\share.csv',
      'a'.repeat(5_000), 'sub/../../secret.csv', 'file:///etc/passwd', '~/.env',
    ];
    const urls = [
      'http://169.254.169.254/latest/meta-data/', 'http://[fd00:ec2::254]/', 'http://100.100.100.200/latest/meta-data/', 'http://127.0.0.1:6379/', 'http://[::1]/',
      'http://0.0.0.0/', 'http://10.0.0.1/hook', 'http://localhost/hook', 'file:///etc/passwd', 'gopher://127.0.0.1:6379/_INFO', 'ftp://10.0.0.1/', 'javascript:alert(1)',
      `https://203.0.113.7/${'x'.repeat(3_000)}`, 'https://203.0.113.7/hook?token=t', 'http://0x7f000001/', 'http://2130706433/', 'not a url', '',
    ];
    const strings = ['', ' ', 'x', '{sku}', '{title}', '{../../x}', '../{sku}.png', '/abs/{sku}.png', 'a\u0000b', 'x'.repeat(70_000), '🙂'.repeat(900), '1e309', '*', '99999*99999'];
    const anything = (): unknown => pick([pick(strings), pick(paths), pick(urls), int(3) - 1, 2 ** 53, null, true, [], {}, [pick(strings)]]);

    function scheduleBody(): unknown {
      // Half are valid but for one hostile path or URL, so that the guard under test is what
      // decides (a body wrong in three ways is refused before its path is looked at).
      if (random() < 0.5) {
        const valid = { every: '1h', promptTemplate: 'Photo of {title}', size: '512*512' };
        return random() < 0.7 ? { ...valid, csv: pick(paths) } : random() < 0.5 ? { ...valid, csv: 'products.csv', webhook: { url: pick(urls) } } : { ...valid, feed: pick(urls) };
      }
      const body: Record<string, unknown> = {};
      const source = int(4);
      if (source === 0) body['csv'] = pick(paths);
      else if (source === 1) body['feed'] = pick(urls);
      else if (source === 2) body['prompts'] = Array.from({ length: int(3) }, () => pick(strings));
      else body[pick(['csv', 'feed', 'prompts'])] = anything();
      body[pick(['every', 'cron'])] = pick(['1s', '1h', 'often', '* * * * *', '0 6 * * *', '', 'x'.repeat(300), '0 0 31 2 *']);
      if (random() < 0.5) body['tz'] = pick(['Asia/Shanghai', 'Mars/Olympus', '../../etc/localtime', '']);
      if (random() < 0.6) body['promptTemplate'] = pick(strings);
      if (random() < 0.5) body['key'] = pick(strings);
      if (random() < 0.4) body['webhook'] = random() < 0.8 ? { url: pick(urls), ...(random() < 0.3 ? { events: [pick(['schedule.failed', 'job.started', 'x'])] } : {}) } : anything();
      if (random() < 0.3) body['size'] = pick(strings);
      if (random() < 0.2) body[pick(['__proto__', 'constructor', 'extra', 'metadata'])] = anything();
      return random() < 0.05 ? anything() : body;
    }
    function batchItem(): Record<string, unknown> {
      const item: Record<string, unknown> = { prompt: pick(strings) };
      if (random() < 0.5) item['key'] = pick([...strings, ...paths]);
      if (random() < 0.4) item['webhook'] = random() < 0.8 ? { url: pick(urls) } : anything();
      if (random() < 0.3) item['size'] = pick(strings);
      if (random() < 0.3) item['metadata'] = { [pick(['sku', '../x', 'a'.repeat(300)])]: pick(strings) };
      return item;
    }
    function batchRequest(): { query: string; type: string; raw: string } {
      const query = random() < 0.5 ? '' : `?${pick(['webhook', 'key', 'promptTemplate', 'batchId', 'metadataColumns'])}=${encodeURIComponent(String(pick([...urls, ...paths, ...strings])))}`;
      const kind = int(3);
      if (kind === 0) return { query, type: 'application/json', raw: JSON.stringify(Array.from({ length: int(4) + 1 }, batchItem)) };
      if (kind === 1) return { query, type: 'application/x-ndjson', raw: Array.from({ length: int(4) + 1 }, () => JSON.stringify(batchItem())).join('\n') };
      const rows = Array.from({ length: int(4) + 1 }, () => [pick(strings), pick([...paths, ...strings]), pick(urls)].map((v) => `"${String(v).replaceAll('"', '""')}"`).join(','));
      return { query, type: 'text/csv', raw: ['prompt,key,webhook', ...rows].join('\n') };
    }

    const statuses = new Map<number, number>();
    const failures: string[] = [];
    const send = async (i: number, method: string, path: string, type: string, raw: string) => {
      try {
        const response = await fetch(`${api.url}${path}`, { method, headers: { authorization: `Bearer ${TOKEN}`, 'content-type': type }, body: raw });
        const text = await response.text();
        statuses.set(response.status, (statuses.get(response.status) ?? 0) + 1);
        if (response.status >= 500) failures.push(`#${i} ${method} ${path} ${raw.slice(0, 200)} → ${response.status} ${text.slice(0, 200)}`);
        else if (response.status >= 400 && !/"error":\{"code":"[A-Z_]+"/.test(text)) failures.push(`#${i} ${method} ${path} → ${response.status} without an error body`);
        if (text.includes(CANARY)) failures.push(`#${i} ${method} ${path} ${raw.slice(0, 200)} → answered with the canary's content`);
      } catch (error) {
        failures.push(`#${i} ${method} ${path} → ${(error as Error).message}`);
      }
    };
    const requests: Array<(i: number) => Promise<void>> = [
      ...Array.from({ length: SCHEDULE_BODIES }, () => {
        const id = pick(['nightly', 'a', 'x'.repeat(100), '..', '%2e%2e', 'ok-1']);
        const body = JSON.stringify(scheduleBody());
        return (i: number) => send(i, 'PUT', `/v1/schedules/${encodeURIComponent(id)}`, 'application/json', body);
      }),
      ...Array.from({ length: BATCH_BODIES }, () => {
        const request = batchRequest();
        return (i: number) => send(i, 'POST', `/v1/batches${request.query}`, request.type, request.raw);
      }),
    ];
    try {
      for (let i = 0; i < requests.length; i += 8) await Promise.all(requests.slice(i, i + 8).map((run, j) => run(i + j)));

      expect(failures).toEqual([]);
      expect([...statuses.values()].reduce((a, b) => a + b, 0)).toBe(SCHEDULE_BODIES + BATCH_BODIES);
      // The generator reaches both the accepting and the refusing paths.
      expect([...statuses.keys()].some((s) => s < 300)).toBe(true);
      expect(read(), 'a file outside ZIMAGE_SCHEDULE_FILES_DIR was read').toBe(false);
      // No stored schedule names a file outside the folder.
      for (const schedule of (await api.call('GET', '/v1/schedules')).body.schedules as { spec: { csv?: string } }[]) {
        if (schedule.spec.csv !== undefined) expect(['products.csv']).toContain(schedule.spec.csv);
      }
    } finally {
      rmSync(folder, { recursive: true, force: true });
      rmSync(outside, { recursive: true, force: true });
    }
  }, 300_000);
});
