/**
 * Listing over HTTP: `GET /v1/batches` (newest first, by state and time, cursor pages that hold
 * under ties and new batches), `GET /v1/jobs?batchId=&state=` (exact pages over a batch of any
 * size), and the operator's `/batches` index page.
 */
import { describe, expect, it } from 'vitest';
import { batchIndexKey } from '@zimage/shared';
import { startApi, TOKEN, type ApiHarness } from './support/api-harness.js';

async function postBatch(api: ApiHarness, prompts: readonly string[]): Promise<string> {
  const r = await api.call('POST', '/v1/batches', { raw: prompts.map((prompt) => JSON.stringify({ prompt, size: '512*512' })).join('\n'), type: 'application/x-ndjson' });
  expect(r.status).toBe(202);
  return r.body.batchId as string;
}

/** Every page of a listing, following nextCursor. */
async function allPages(api: ApiHarness, path: string, field: 'batches' | 'jobs'): Promise<{ ids: string[]; pages: number }> {
  const ids: string[] = [];
  let cursor: string | null = null;
  let pages = 0;
  do {
    const sep = path.includes('?') ? '&' : '?';
    const r = await api.call('GET', `${path}${cursor ? `${sep}cursor=${encodeURIComponent(cursor)}` : ''}`);
    expect(r.status).toBe(200);
    pages += 1;
    for (const item of r.body[field]) ids.push(field === 'batches' ? item.batchId : item.id);
    cursor = r.body.nextCursor;
  } while (cursor !== null && pages < 1000);
  return { ids, pages };
}

describe('listing batches and jobs', () => {
  it('GET /v1/batches lists newest first, filters by state and creation time, and pages with a cursor', async () => {
    await using api = await startApi({ worker: false });
    const made: string[] = [];
    for (let i = 0; i < 5; i += 1) made.push(await postBatch(api, [`batch ${i} image`]));
    // Cancelling a batch of waiting jobs finishes it: two completed, three running.
    for (const id of [made[1], made[3]]) expect((await api.call('POST', `/v1/batches/${id}/cancel`)).status).toBe(200);

    const newestFirst = [...made].reverse();
    const first = await api.call('GET', '/v1/batches');
    expect(first.body.batches.map((b: { batchId: string }) => b.batchId)).toEqual(newestFirst);
    expect(first.body.nextCursor).toBeNull();
    const paged = await allPages(api, '/v1/batches?limit=2', 'batches');
    expect(paged).toEqual({ ids: newestFirst, pages: 3 });

    const completed = await api.call('GET', '/v1/batches?state=completed');
    expect(completed.body.batches.map((b: { batchId: string; state: string }) => [b.batchId, b.state])).toEqual([
      [made[3], 'completed'],
      [made[1], 'completed'],
    ]);
    expect((await allPages(api, '/v1/batches?state=running&limit=1', 'batches')).ids).toEqual([made[4], made[2], made[0]]);

    const third = (await api.call('GET', `/v1/batches/${made[2]}`)).body.createdAt as string;
    const since = await api.call('GET', `/v1/batches?createdAfter=${encodeURIComponent(third)}`);
    expect(since.body.batches.map((b: { batchId: string }) => b.batchId)).toEqual([made[4], made[3], made[2]]);
    const before = await api.call('GET', `/v1/batches?createdBefore=${encodeURIComponent(third)}`);
    expect(before.body.batches.map((b: { batchId: string }) => b.batchId)).toEqual([made[1], made[0]]);
  });

  it('pages batches created in the same millisecond without losing or repeating one, and refuses a forged cursor', async () => {
    await using api = await startApi({ worker: false });
    const ids: string[] = [];
    for (let i = 0; i < 7; i += 1) ids.push(await api.stack.producer.beginBatch({ total: 1, batchId: `tie-${i}` }));
    // Same score for all: only the id orders them.
    const stamp = Date.now();
    for (const id of ids) await api.stack.redis.zadd(batchIndexKey(api.stack.prefix), stamp, id);
    const paged = await allPages(api, '/v1/batches?limit=3', 'batches');
    expect(paged.pages).toBe(3);
    expect(paged.ids).toEqual([...ids].sort().reverse());

    for (const cursor of ['not-a-cursor!', Buffer.from('{"score":"x"}').toString('base64url'), 'A'.repeat(600)]) {
      const r = await api.call('GET', `/v1/batches?cursor=${encodeURIComponent(cursor)}`);
      expect(r.status).toBe(400);
      expect(r.body.error.code).toBe('REQUEST_INVALID');
      expect(r.body.error.message).toMatch(/cursor/);
    }
    for (const query of ['state=done', 'limit=0', 'limit=501', 'limit=abc', 'createdAfter=yesterday', 'colour=red']) {
      const r = await api.call('GET', `/v1/batches?${query}`);
      expect(r.status, query).toBe(400);
      expect(r.body.error.issues[0].field, query).toBe(`query.${query.split('=')[0]}`);
    }
  });

  it('drops batches whose record has expired from the listing', async () => {
    await using api = await startApi({ worker: false });
    const kept = await postBatch(api, ['kept']);
    const gone = await postBatch(api, ['gone']);
    await api.stack.redis.del(`${api.stack.prefix}:batch:${gone}`);
    const r = await api.call('GET', '/v1/batches');
    expect(r.body.batches.map((b: { batchId: string }) => b.batchId)).toEqual([kept]);
    expect(await api.stack.redis.zscore(batchIndexKey(api.stack.prefix), gone)).toBeNull();
  });

  it("GET /v1/jobs?batchId= pages a 300-job batch exactly, and filters by state", async () => {
    await using api = await startApi({ worker: false });
    const batchId = await postBatch(api, Array.from({ length: 300 }, (_, i) => `tile ${i}`));
    const everything = await allPages(api, `/v1/jobs?batchId=${batchId}&limit=50`, 'jobs');
    expect(everything.ids).toHaveLength(300);
    expect(new Set(everything.ids).size).toBe(300);
    expect(everything.pages).toBeGreaterThanOrEqual(6);

    const cancelled = everything.ids.slice(0, 4);
    for (const id of cancelled) expect((await api.call('DELETE', `/v1/jobs/${id}`)).status).toBe(200);
    const listed = await allPages(api, `/v1/jobs?batchId=${batchId}&state=cancelled&limit=3`, 'jobs');
    expect([...listed.ids].sort()).toEqual([...cancelled].sort());
    const waiting = await allPages(api, `/v1/jobs?batchId=${batchId}&state=waiting&limit=100`, 'jobs');
    expect(waiting.ids).toHaveLength(296);

    const page = await api.call('GET', `/v1/jobs?batchId=${batchId}&limit=1`);
    expect(page.body.jobs[0]).toMatchObject({ request: { batchId, size: '512*512' }, timings: { createdAt: expect.any(String) } });
  });

  it('GET /v1/jobs without a batch lists one BullMQ state, newest first, and needs the state', async () => {
    await using api = await startApi({ worker: false });
    const ids: string[] = [];
    for (let i = 0; i < 3; i += 1) ids.push((await api.call('POST', '/v1/jobs', { body: { prompt: `single ${i}`, size: '512*512' } })).body.id);
    const waiting = await allPages(api, '/v1/jobs?state=waiting&limit=2', 'jobs');
    expect([...waiting.ids].sort()).toEqual([...ids].sort());
    expect(waiting.pages).toBe(2);
    for (const query of ['', '?state=cancelled']) {
      const r = await api.call('GET', `/v1/jobs${query}`);
      expect(r.status).toBe(400);
      expect(r.body.error.message).toMatch(/^state: /);
    }
  });

  it('/batches shows the operator an index of batches linking to their galleries, filtered by state', async () => {
    await using api = await startApi({ worker: false });
    const running = await postBatch(api, ['running one']);
    const done = await postBatch(api, ['done one']);
    await api.call('POST', `/v1/batches/${done}/cancel`);
    const basic = { authorization: `Basic ${Buffer.from(`ops:${TOKEN}`).toString('base64')}` };
    const page = await api.call('GET', '/batches', { headers: basic });
    expect(page.status).toBe(200);
    expect(page.headers.get('content-type')).toContain('text/html');
    const rows = [...page.text.matchAll(/<tr data-batch="([^"]+)" data-state="([^"]+)">/g)].map((m) => [m[1], m[2]]);
    expect(rows).toEqual([
      [done, 'completed'],
      [running, 'running'],
    ]);
    expect(page.text).toContain(`href="/batches/${running}/gallery"`);
    const filtered = await api.call('GET', '/batches?state=completed', { headers: basic });
    expect([...filtered.text.matchAll(/<tr data-batch="([^"]+)"/g)].map((m) => m[1])).toEqual([done]);
    const challenged = await api.call('GET', '/batches', { token: null });
    expect(challenged.status).toBe(401);
    expect(challenged.headers.get('www-authenticate')).toContain('Basic');
  });
});
