/**
 * The HTTP API through a real listening server: contract, auth, all-or-nothing batches,
 * idempotency, cancel (waiting and active) and health.
 */
import { rmSync, writeFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { eventIdFor } from '@zimage/shared';
import { startApi, TOKEN, type ApiHarness } from './support/api-harness.js';
import { until } from './support/until.js';


describe('HTTP API', () => {
  it('POST /v1/jobs → 202 with an id and status URL; GET shows it through to its result', async () => {
    await using api = await startApi();
    const created = await api.call('POST', '/v1/jobs', { body: { prompt: 'A green teapot', size: '512*512', metadata: { sku: 'T-9' }, key: 'tea/{sku}.png' } });
    expect(created.status).toBe(202);
    expect(created.body).toMatchObject({ status: 'queued', created: true, key: 'tea/T-9.png' });
    expect(created.body.statusUrl).toBe(`/v1/jobs/${created.body.id}`);
    await until(async () => (await api.call('GET', created.body.statusUrl)).body.state === 'completed');
    const view = await api.call('GET', created.body.statusUrl);
    expect(view.status).toBe(200);
    expect(view.body).toMatchObject({ id: created.body.id, state: 'completed', attempts: 1, request: { prompt: 'A green teapot', size: '512*512', key: 'tea/T-9.png', metadata: { sku: 'T-9' } } });
    expect(view.body.result).toMatchObject({ key: 'tea/T-9.png', width: 512, height: 512 });
    expect(view.body.result.sha256).toMatch(/^[0-9a-f]{64}$/);
    expect(view.body.timings.finishedAt).toBeDefined();
  });

  it('answers 401 without a valid token, in constant shape, and accepts every configured token', async () => {
    await using api = await startApi({ worker: false });
    for (const token of [null, 'wrong-token-0123456789', '']) {
      const r = await api.call('GET', '/v1/jobs/x', { token });
      expect(r.status).toBe(401);
      expect(r.body.error.code).toBe('UNAUTHORIZED');
      expect(r.headers.get('www-authenticate')).toContain('Bearer');
    }
    expect((await api.call('GET', '/v1/jobs/nope', { token: 'second-token-abcdefghijkl' })).status).toBe(404);
    const basic = `Basic ${Buffer.from(`anyone:${TOKEN}`).toString('base64')}`;
    expect((await api.call('GET', '/v1/jobs/nope', { headers: { authorization: basic } })).status).toBe(404);
    expect((await api.call('GET', '/healthz', { token: null })).body).toEqual({ ok: true });
    expect((await api.call('GET', '/readyz', { token: null })).body).toEqual({ ready: true, redis: 'ok', storage: 'ok', fleet: { paused: false, parkedJobs: 0 } });
  });

  it('/metrics (spend, account ids, queue sizes) needs an API token or ZIMAGE_METRICS_TOKEN, unless ZIMAGE_METRICS_PUBLIC', async () => {
    const scraper = 'scraper-token-0123456789';
    {
      await using api = await startApi({ worker: false }, { metrics: { token: scraper } });
      for (const token of [null, 'wrong-token-0123456789']) expect((await api.call('GET', '/metrics', { token })).status).toBe(401);
      expect((await api.call('GET', '/metrics', { token: scraper })).text).toMatch(/^zimage_events_stream_length /m);
      expect((await api.call('GET', '/metrics')).status).toBe(200); // an API token
      // the scraper's token opens nothing else
      expect((await api.call('GET', '/v1/jobs/nope', { token: scraper })).status).toBe(401);
    }
    await using open = await startApi({ worker: false }, { metrics: { public: true } });
    expect((await open.call('GET', '/metrics', { token: null })).status).toBe(200);
    expect((await open.call('GET', '/v1/jobs/nope', { token: null })).status).toBe(401);
  });

  it('shows a fleet stopped by a storage outage in /readyz and /metrics, with the reason and what to do', async () => {
    await using api = await startApi({ worker: { concurrency: 2 } });
    const { stack } = api;
    // The output folder becomes a file: every write fails, the fleet stops after three in a row.
    rmSync(stack.outputDir, { recursive: true, force: true });
    writeFileSync(stack.outputDir, 'not a folder');
    await stack.producer.enqueueMany(Array.from({ length: 4 }, (_, i) => ({ prompt: `A vase ${i}`, size: '512*512' })));
    await until(async () => (await stack.producer.pauseState()).paused, 30_000);
    const ready = await api.call('GET', '/readyz', { token: null });
    expect(ready.body.fleet).toMatchObject({ paused: true, reason: { code: 'STORAGE_REFUSED', action: expect.stringContaining('probe write') } });
    expect((await api.call('GET', '/metrics')).text).toMatch(/^zimage_queue_paused\{code="STORAGE_REFUSED"\} 1$/m);
    rmSync(stack.outputDir, { force: true });
    await until(async () => !(await stack.producer.pauseState()).paused, 30_000); // resumed by the probe
  });

  it('rejects bad input with 4xx naming every field, enqueuing nothing', async () => {
    await using api = await startApi({ worker: false });
    const bad = await api.call('POST', '/v1/jobs', { body: { prompt: '', size: '10*10', seed: -1, colour: 'red' } });
    expect(bad.status).toBe(400);
    expect(bad.body.error.code).toBe('REQUEST_INVALID');
    expect(bad.body.error.issues.map((i: { field: string }) => i.field).sort()).toEqual(['colour', 'prompt', 'seed', 'size']);
    const cases: [Parameters<ApiHarness['call']>[2], number, string][] = [
      [{ raw: '{"prompt": "x",' }, 400, 'REQUEST_INVALID'],
      [{ raw: '' }, 400, 'REQUEST_INVALID'],
      [{ raw: '[1,2]' }, 400, 'REQUEST_INVALID'],
      [{ raw: 'null' }, 400, 'REQUEST_INVALID'],
      [{ raw: 'prompt=x', type: 'application/x-www-form-urlencoded' }, 415, 'UNSUPPORTED_MEDIA_TYPE'],
      [{ body: { prompt: 'x'.repeat(70_000) } }, 413, 'PAYLOAD_TOO_LARGE'],
      [{ body: { prompt: 'x' }, headers: { 'idempotency-key': 'has space' } }, 400, 'REQUEST_INVALID'],
      [{ body: { prompt: 'x', webhook: { url: 'http://169.254.169.254/' } } }, 400, 'WEBHOOK_URL_REFUSED'],
    ];
    for (const [options, status, code] of cases) {
      const r = await api.call('POST', '/v1/jobs', options);
      expect([r.status, r.body?.error?.code], JSON.stringify(options).slice(0, 80)).toEqual([status, code]);
    }
    expect((await api.call('GET', '/v1/nothing')).body.error.code).toBe('ROUTE_NOT_FOUND');
    expect((await api.call('GET', '/v1/jobs/no-such-job')).status).toBe(404);
    expect(await api.stack.producer.queue.count()).toBe(0);
  });

  it('Idempotency-Key: a repeat returns the original response; another body with the key is a 409', async () => {
    await using api = await startApi({ worker: false });
    const request = { body: { prompt: 'Once only', size: '512*512' }, headers: { 'idempotency-key': 'order-42' } };
    const first = await api.call('POST', '/v1/jobs', request);
    const again = await api.call('POST', '/v1/jobs', request);
    expect(first.status).toBe(202);
    expect(again.status).toBe(202);
    expect(again.body).toEqual(first.body);
    expect(again.headers.get('idempotent-replayed')).toBe('true');
    const conflict = await api.call('POST', '/v1/jobs', { ...request, body: { prompt: 'Something else' } });
    expect([conflict.status, conflict.body.error.code]).toEqual([409, 'IDEMPOTENCY_CONFLICT']);
    // An error answer is the original response too.
    const badRequest = { body: { prompt: '' }, headers: { 'idempotency-key': 'bad-1' } };
    const firstBad = await api.call('POST', '/v1/jobs', badRequest);
    const repeatBad = await api.call('POST', '/v1/jobs', badRequest);
    expect([firstBad.status, repeatBad.status]).toEqual([400, 400]);
    expect(repeatBad.body).toEqual(firstBad.body);
    expect(repeatBad.headers.get('idempotent-replayed')).toBe('true');
    expect(await api.stack.producer.queue.count()).toBe(1);

    const batch = { body: [{ prompt: 'a' }, { prompt: 'b' }], headers: { 'idempotency-key': 'batch-7' } };
    const b1 = await api.call('POST', '/v1/batches', batch);
    const b2 = await api.call('POST', '/v1/batches', batch);
    expect(b1.status).toBe(202);
    expect(b2.body.batchId).toBe(b1.body.batchId);
    expect(await api.stack.producer.queue.count()).toBe(3);
  });

  it('POST /v1/batches (JSON, NDJSON, CSV with templates) → progress, ETA, cost, results NDJSON', async () => {
    await using api = await startApi();
    const json = await api.call('POST', '/v1/batches?size=512*512', { body: [{ prompt: 'Mug', metadata: { sku: 'M1' } }, { prompt: 'Cup', seed: 7 }, { prompt: 'zimage-test-unsafe bowl' }] });
    expect(json.status).toBe(202);
    expect(json.body).toMatchObject({ items: 3, enqueued: 3, statusUrl: `/v1/batches/${json.body.batchId}` });
    const ndjson = await api.call('POST', '/v1/batches', { raw: '{"prompt":"Plate","size":"512*512"}\n{"prompt":"Fork","size":"512*512"}\n', type: 'application/x-ndjson' });
    expect(ndjson.body.enqueued).toBe(2);
    const csv = await api.call('POST', `/v1/batches?promptTemplate=${encodeURIComponent('Studio photo of {title}')}&key=${encodeURIComponent('cat/{sku}.png')}&size=512*512`, {
      raw: 'sku,title\nS-1,a spoon\nS-2,一把刀\n',
      type: 'text/csv',
    });
    expect(csv.status, csv.text).toBe(202);

    for (const id of [json.body.batchId, ndjson.body.batchId, csv.body.batchId]) {
      await until(async () => (await api.call('GET', `/v1/batches/${id}`)).body.state === 'completed');
    }
    const status = await api.call('GET', `/v1/batches/${json.body.batchId}`);
    expect(status.body).toMatchObject({ state: 'completed', total: 3, counts: { succeeded: 2, failed: 1, pending: 0 }, progress: 1, etaSeconds: 0, estimatedCostUsd: 0.03 });
    expect(status.body.imagesPerMinute).toBeGreaterThan(0);

    const results = await api.call('GET', `/v1/batches/${csv.body.batchId}/results`);
    expect(results.headers.get('content-type')).toContain('application/x-ndjson');
    const lines = results.text.trim().split('\n').map((l) => JSON.parse(l));
    expect(lines.map((l) => [l.rowKey, l.status, l.key])).toEqual([
      ['S-1', 'succeeded', 'cat/S-1.png'],
      ['S-2', 'succeeded', 'cat/S-2.png'],
    ]);
    const job = await api.stack.producer.getJob(lines[1].jobId);
    expect(job?.payload.prompt).toBe('Studio photo of 一把刀');
  });

  it('validates every batch item first: one bad item → 400 listing each bad item by index and field, nothing enqueued', async () => {
    await using api = await startApi({ worker: false });
    const items = [{ prompt: 'ok', size: '512*512' }, { prompt: '', size: '512*512' }, { prompt: 'ok 2', size: '1*1' }, { prompt: 'ok 3', seed: 'x' }, 'not an object'];
    const r = await api.call('POST', '/v1/batches', { body: items });
    expect(r.status).toBe(400);
    expect(r.body.error.code).toBe('BATCH_INVALID');
    expect(r.body.error.items.map((i: { index: number; issues: { field: string }[] }) => [i.index, i.issues.map((x) => x.field)])).toEqual([
      [1, ['prompt']],
      [2, ['size']],
      [3, ['seed']],
      [4, ['']],
    ]);
    const csv = await api.call('POST', '/v1/batches', { raw: 'prompt,size\nfine,512*512\n,512*512\n', type: 'text/csv' });
    expect(csv.status).toBe(400);
    expect(csv.body.error.items).toEqual([{ line: 3, issues: [expect.objectContaining({ field: 'prompt' })] }]);
    const badQuery = await api.call('POST', '/v1/batches?colour=red&priority=high', { body: [{ prompt: 'x' }] });
    expect(badQuery.status).toBe(400);
    expect(badQuery.body.error.issues.map((i: { field: string }) => i.field).sort()).toEqual(['query.colour', 'query.priority']);
    const tooMany = await api.call('POST', '/v1/batches', { body: Array.from({ length: 100_001 }, () => ({ prompt: 'x' })) });
    expect([tooMany.status, tooMany.body.error.code]).toEqual([413, 'PAYLOAD_TOO_LARGE']);
    expect(await api.stack.producer.queue.count()).toBe(0);
    expect(await api.stack.redis.keys(`${api.stack.prefix}:batch:*`)).toEqual([]);
  });

  it('cancels a waiting job (it never runs) and a whole batch; counts them as cancelled', async () => {
    await using api = await startApi({ worker: false });
    const job = await api.call('POST', '/v1/jobs', { body: { prompt: 'Never', size: '512*512' } });
    const cancel = await api.call('DELETE', `/v1/jobs/${job.body.id}`);
    expect([cancel.status, cancel.body.state]).toEqual([200, 'cancelled']);
    const view = await api.call('GET', `/v1/jobs/${job.body.id}`);
    expect(view.body).toMatchObject({ state: 'cancelled', error: { code: 'JOB_CANCELLED' } });
    expect((await api.call('DELETE', `/v1/jobs/${job.body.id}`)).body.error.code).toBe('JOB_NOT_CANCELLABLE');

    const batch = await api.call('POST', '/v1/batches?size=512*512', { body: [{ prompt: 'a' }, { prompt: 'b' }, { prompt: 'c' }] });
    const cancelled = await api.call('POST', `/v1/batches/${batch.body.batchId}/cancel`);
    expect(cancelled.body).toMatchObject({ cancelled: 3, cancelling: 0 });
    const status = await api.call('GET', `/v1/batches/${batch.body.batchId}`);
    expect(status.body).toMatchObject({ state: 'completed', counts: { cancelled: 3, pending: 0 } });
    // A worker started now finds nothing to do: cancelled jobs never reach the upstream.
    await api.stack.startWorker();
    await new Promise((r) => setTimeout(r, 500));
    expect(api.stack.emulator.stats().requests).toBe(0);
    const events = await api.stack.events();
    expect(events.filter((e) => e.type === 'job.failed').map((e) => e.type === 'job.failed' && e.data.error.code)).toEqual(['JOB_CANCELLED', 'JOB_CANCELLED', 'JOB_CANCELLED', 'JOB_CANCELLED']);
    expect(events.filter((e) => e.type === 'batch.completed')).toHaveLength(1);
  });

  it('cancels an active job: its upstream request is aborted, it ends cancelled, and it is billed at most once', async () => {
    await using api = await startApi({ emulator: { latency: { minMs: 3_000, maxMs: 3_000 } } });
    const job = await api.call('POST', '/v1/jobs', { body: { prompt: 'Slow one', size: '512*512' } });
    await until(() => api.stack.emulator.stats().inFlight === 1);
    const started = Date.now();
    const cancel = await api.call('DELETE', `/v1/jobs/${job.body.id}`);
    expect([cancel.status, cancel.body.state]).toEqual([202, 'cancelling']);
    await until(async () => (await api.call('GET', `/v1/jobs/${job.body.id}`)).body.state === 'cancelled', 5_000);
    expect(Date.now() - started).toBeLessThan(2_500); // aborted, not waited out
    await until(() => api.stack.emulator.stats().inFlight === 0, 5_000);
    await new Promise((r) => setTimeout(r, 1_000));
    const stats = api.stack.emulator.stats();
    expect(stats.requests).toBe(1); // never retried
    expect(stats.imagesGenerated).toBeLessThanOrEqual(1);
    const events = await api.stack.events();
    expect(events.map((e) => e.id)).toEqual([eventIdFor('job.failed', job.body.id)]);
  });

  it('serves Prometheus metrics for the whole fleet, the OpenAPI document from the zod schemas, and Bull Board behind auth', async () => {
    await using api = await startApi();
    const ok = await api.call('POST', '/v1/batches?size=512*512', { body: [{ prompt: 'One' }, { prompt: 'Two' }, { prompt: 'zimage-test-unsafe three' }] });
    await until(async () => (await api.call('GET', `/v1/batches/${ok.body.batchId}`)).body.state === 'completed');
    await until(async () => (await api.call('GET', '/metrics')).text.includes('zimage_pace_rpm{'), 15_000);
    const metrics = (await api.call('GET', '/metrics')).text;
    const value = (line: string) => Number(new RegExp(`^${line.replace(/[{}|+]/g, (c) => `\\${c}`)} (\\S+)$`, 'm').exec(metrics)?.[1]);
    expect(value('zimage_images_stored_total')).toBe(2);
    expect(value('zimage_jobs_finished_total{outcome="succeeded"}')).toBe(2);
    expect(value('zimage_jobs_finished_total{outcome="failed"}')).toBe(1);
    expect(value('zimage_estimated_spend_usd_total')).toBeCloseTo(0.03, 6);
    expect(value('zimage_upstream_requests_total{region="singapore",code="ok"}')).toBe(2);
    expect(value('zimage_upstream_requests_total{region="singapore",code="DataInspectionFailed"}')).toBe(1);
    expect(value('zimage_upstream_latency_seconds_count{region="singapore"}')).toBe(3);
    expect(value('zimage_upstream_latency_seconds_bucket{region="singapore",le="+Inf"}')).toBe(3);
    expect(metrics).toMatch(/^# TYPE zimage_upstream_latency_seconds histogram$/m);
    expect(value('zimage_jobs{state="completed"}')).toBe(2);
    expect(metrics).toMatch(/^zimage_quota_utilisation\{account="test",region="singapore"\} [\d.]+$/m);
    expect(metrics).toMatch(/^zimage_throttle_ratio\{account="test",region="singapore"\} 0$/m);
    expect(metrics).not.toContain(TOKEN);

    const openapi = await api.call('GET', '/openapi.json', { token: null });
    expect(Object.keys(openapi.body.paths)).toEqual(expect.arrayContaining(['/v1/jobs', '/v1/jobs/{id}', '/v1/batches', '/v1/batches/{id}/results']));
    expect(openapi.body.components.schemas.JobRequest.properties.prompt).toBeDefined();
    expect(openapi.body.components.schemas.JobRequest.required).toEqual(['prompt']);

    expect((await api.call('GET', '/admin/queues', { token: null })).status).toBe(401);
    const board = await api.call('GET', '/admin/queues', { headers: { authorization: `Basic ${Buffer.from(`ops:${TOKEN}`).toString('base64')}` } });
    expect(board.status).toBe(200);
    expect(board.text).toContain('<html');
    const queues = await api.call('GET', '/admin/queues/api/queues');
    expect(queues.status).toBe(200);
    expect(queues.body.queues.map((q: { name: string }) => q.name).sort()).toEqual(['generate', 'webhooks']);
  });
});
