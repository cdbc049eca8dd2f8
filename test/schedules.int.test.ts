/**
 * Scheduled pipelines: a pipelines file applied twice changes nothing, a schedule fires and each
 * tick is an ordinary batch, removing it from the file removes it; the API manages its own.
 */
import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { createSchedules, startScheduleRunner } from '@zimage/producer';
import { createLogger, generateWebhookSecret, isAppError, parseWebhookSecrets, readEvents } from '@zimage/shared';
import { startWebhookDispatcher } from '@zimage/worker';
import { startWebhookReceiver } from './support/webhook-receiver.js';
import { startApi } from './support/api-harness.js';
import { until } from './support/until.js';

const logger = createLogger({ level: process.env['TEST_LOG_LEVEL'] ?? 'silent', pretty: false });


describe('scheduled pipelines', () => {
  it('applies a file idempotently, fires ticks as ordinary batches, and removes a pipeline dropped from the file', async () => {
    await using api = await startApi();
    const { stack } = api;
    const dir = mkdtempSync(join(tmpdir(), 'zimage-sched-'));
    const schedules = createSchedules(stack.redis, stack.prefix, { filesDir: dir });
    const runner = startScheduleRunner({ redisUrl: stack.redisUrl, prefix: stack.prefix, logger, producer: stack.producer, policy: { allowedHosts: [] }, filesDir: dir });
    const batchesOf = async (id: string) =>
      (await stack.redis.keys(`${stack.prefix}:batch:sched-${id}-*`)).filter((k) => /sched-[a-z-]+-\d+$/.test(k)).sort();
    try {
      writeFileSync(join(dir, 'products.csv'), 'sku,title\nP-1,a lamp\nP-2,a chair\n');
      const file = join(dir, 'pipelines.yaml');
      const both = `pipelines:
  - id: daily-special
    every: 1s
    size: "512*512"
    key: "specials/{date}/{id}.png"
    metadata: { campaign: winter }
    prompts:
      - "Today's special for {date}: a warm soup"
  - id: catalogue
    cron: "0 6 * * *"
    tz: Asia/Shanghai
    csv: ./products.csv
    promptTemplate: "Studio photo of {title}"
    key: "catalogue/{date}/{sku}.png"
`;
      writeFileSync(file, both);
      expect(await schedules.applyFile(file)).toEqual({ created: ['daily-special', 'catalogue'], updated: [], unchanged: [], removed: [], kept: [] });
      const before = await schedules.get('catalogue');
      expect(before?.nextRunAt).toMatch(/T22:00:00\.000Z$/); // 06:00 in Shanghai
      expect(before?.spec.csv).toBe('products.csv'); // relative to the file, stored relative to ZIMAGE_SCHEDULE_FILES_DIR
      expect(await schedules.applyFile(file)).toEqual({ created: [], updated: [], unchanged: ['daily-special', 'catalogue'], removed: [], kept: [] });
      expect((await schedules.get('catalogue'))?.updatedAt).toBe(before?.updatedAt);

      // A tick is an ordinary batch: it completes, with events, results and rendered templates.
      await until(async () => (await batchesOf('daily-special')).length >= 1);
      const [firstKey] = await batchesOf('daily-special');
      const batchId = firstKey!.slice(`${stack.prefix}:batch:`.length);
      const status = await stack.waitForBatch(batchId);
      expect(status).toMatchObject({ total: 1, succeeded: 1 });
      expect(status.source).toMatch(/^schedule daily-special @ /);
      const [entry] = await stack.producer.batchResults(batchId);
      const job = await stack.producer.getJob(entry!.jobId);
      const today = new Date(Number(batchId.split('-').at(-1))).toISOString().slice(0, 10);
      expect(job?.payload.prompt).toBe(`Today's special for ${today}: a warm soup`);
      expect(job?.result?.key).toBe(`specials/${today}/${entry!.jobId}.png`);
      expect(job?.payload.metadata).toEqual({ campaign: 'winter' });
      expect((await stack.events()).some((e) => e.type === 'batch.completed' && e.data.batchId === batchId)).toBe(true);

      // Dropping the pipeline from the file and applying with prune removes its schedule: no more ticks.
      writeFileSync(file, both.slice(0, both.indexOf('  - id: daily-special')) + both.slice(both.indexOf('  - id: catalogue')));
      expect(await schedules.applyFile(file, { prune: true })).toEqual({ created: [], updated: [], unchanged: ['catalogue'], removed: ['daily-special'], kept: [] });
      expect((await schedules.queue.getJobSchedulers()).map((s) => s.key ?? s.id)).toEqual(['catalogue']);
      const ticks = (await batchesOf('daily-special')).length;
      await new Promise((r) => setTimeout(r, 2_500));
      expect((await batchesOf('daily-special')).length).toBe(ticks);
    } finally {
      await runner.close();
      await schedules.close();
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('validates the whole file first (cron, time zone, interval, sources) and changes nothing on error', async () => {
    await using api = await startApi({ worker: false });
    const dir = mkdtempSync(join(tmpdir(), 'zimage-sched-'));
    const schedules = createSchedules(api.stack.redis, api.stack.prefix);
    try {
      const file = join(dir, 'pipelines.json');
      writeFileSync(
        file,
        JSON.stringify([
          { id: 'ok', every: '1h', prompts: ['fine'] },
          { id: 'bad-cron', cron: '61 * * * *', prompts: ['x'] },
          { id: 'bad-tz', cron: '0 6 * * *', tz: 'Mars/Olympus', prompts: ['x'] },
          { id: 'both', every: '1h', cron: '0 6 * * *', prompts: ['x'] },
          { id: 'no-source', every: '1h' },
          { id: 'Upper Case', every: '5 minutes', prompts: ['x'], colour: 'red' },
        ]),
      );
      const error = await schedules.applyFile(file).catch((e: unknown) => e);
      expect(isAppError(error) && error.code).toBe('SCHEDULE_INVALID');
      const fields = ((error as { details: { issues: { field: string }[] } }).details.issues).map((i) => i.field);
      expect(fields).toEqual(expect.arrayContaining(['pipelines[1] (bad-cron).cron', 'pipelines[2] (bad-tz).tz', 'pipelines[3] (both).cron', 'pipelines[4] (no-source).prompts', 'pipelines[5] (Upper Case).id', 'pipelines[5] (Upper Case).every', 'pipelines[5] (Upper Case).colour']));
      expect(await schedules.list()).toEqual([]);
      expect(await schedules.queue.getJobSchedulersCount()).toBe(0);
    } finally {
      await schedules.close();
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('records each tick (last run, last batch, last error) and publishes schedule.failed, delivered as a webhook, when a tick makes no batch', async () => {
    await using api = await startApi({ webhookAllowedHosts: ['127.0.0.1'] });
    const { stack } = api;
    const dir = mkdtempSync(join(tmpdir(), 'zimage-sched-'));
    const schedules = createSchedules(stack.redis, stack.prefix, { filesDir: dir });
    const runner = startScheduleRunner({ redisUrl: stack.redisUrl, prefix: stack.prefix, logger, producer: stack.producer, policy: { allowedHosts: [] }, filesDir: dir });
    const secret = generateWebhookSecret();
    const receiver = await startWebhookReceiver(secret);
    const dispatcher = await startWebhookDispatcher({
      redisUrl: stack.redisUrl,
      prefix: stack.prefix,
      logger,
      endpoints: [{ id: 'ops', url: `${receiver.url}/ops`, events: ['schedule.failed'], keys: parseWebhookSecrets(secret) }],
      jobSecretKeys: undefined,
      policy: { allowedHosts: ['127.0.0.1'] },
      retrySchedule: [150, 300],
      timeoutMs: 2_000,
      concurrency: 2,
      claimIdleMs: 1_000,
    });
    try {
      writeFileSync(join(dir, 'products.csv'), 'sku,title\nP-1,a lamp\n');
      await schedules.put('nightly', { every: '1s', csv: 'products.csv', promptTemplate: 'Studio photo of {title}', size: '512*512', key: 'nightly/{batchId}/{sku}.png' });
      await until(async () => (await schedules.get('nightly'))?.lastBatchId !== undefined);
      const ran = (await schedules.get('nightly'))!;
      expect(ran.lastRunAt).toBeDefined();
      expect(ran.lastError).toBeUndefined();

      // The CSV goes away: the next tick cannot make a batch.
      rmSync(join(dir, 'products.csv'));
      await receiver.waitFor((r) => r.some((d) => d.payload?.type === 'schedule.failed'), 30_000);
      const delivery = receiver.received.find((d) => d.payload?.type === 'schedule.failed')!;
      expect(delivery.verifyError).toBeUndefined();
      expect(delivery.path).toBe('/ops');
      expect(delivery.payload!.data).toMatchObject({ scheduleId: 'nightly', error: { code: expect.stringMatching(/^[A-Z_]+$/) }, attempts: 1 });
      const failed = await schedules.get('nightly');
      expect(failed?.lastError).toMatchObject({ code: (delivery.payload!.data['error'] as { code: string }).code, message: expect.stringContaining('products.csv') });
      expect(failed?.lastBatchId).toBe(ran.lastBatchId); // the last batch made is still shown
      const events = (await readEvents(stack.redis, stack.prefix)).filter((e) => e.event.type === 'schedule.failed');
      // One event per failed tick, each with its own id.
      expect(new Set(events.map((e) => e.event.id)).size).toBe(events.length);
    } finally {
      await schedules.remove('nightly');
      await runner.close();
      await dispatcher.close();
      await receiver.close();
      await schedules.close();
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it("shows a schedule's webhook by host and filter only: PUT, GET one and GET all never answer its URL", async () => {
    await using api = await startApi({ worker: false, webhookAllowedHosts: ['127.0.0.1'] });
    const url = 'http://127.0.0.1:9/hooks?token=tok-sched-7e6d5c4b3a';
    const spec = { cron: '0 * * * *', prompts: ['Banner for {datetime}'], size: '1024*1024', webhook: { url, events: ['batch.completed'] } };
    const put = await api.call('PUT', '/v1/schedules/banner', { body: spec });
    expect(put.status).toBe(201);
    const one = await api.call('GET', '/v1/schedules/banner');
    const all = await api.call('GET', '/v1/schedules');
    expect(one.body.spec.webhook).toEqual({ host: '127.0.0.1:9', events: ['batch.completed'] });
    for (const answer of [put, one, all]) expect(answer.text).not.toContain('tok-sched');
    // Kept whole where ticks read it: a repeat of the same definition is still "unchanged".
    expect((await api.call('PUT', '/v1/schedules/banner', { body: spec })).body.change).toBe('unchanged');
  });

  it('PUT / GET / DELETE /v1/schedules; a file apply leaves API-created schedules alone', async () => {
    await using api = await startApi({ worker: false });
    const put = await api.call('PUT', '/v1/schedules/hourly-banner', { body: { cron: '0 * * * *', tz: 'Europe/Berlin', prompts: ['Banner for {datetime}'], size: '1024*1024' } });
    expect(put.status).toBe(201);
    expect(put.body).toMatchObject({ id: 'hourly-banner', source: 'api', change: 'created' });
    expect(put.body.nextRunAt).toMatch(/:00:00\.000Z$/);
    expect((await api.call('PUT', '/v1/schedules/hourly-banner', { body: { cron: '0 * * * *', tz: 'Europe/Berlin', prompts: ['Banner for {datetime}'], size: '1024*1024' } })).body.change).toBe('unchanged');
    const bad = await api.call('PUT', '/v1/schedules/x', { body: { every: 'often', prompts: [] } });
    expect([bad.status, bad.body.error.code]).toEqual([400, 'SCHEDULE_INVALID']);
    expect(bad.body.error.issues.map((i: { field: string }) => i.field).sort()).toEqual(['every', 'prompts']);

    const dir = mkdtempSync(join(tmpdir(), 'zimage-sched-'));
    const schedules = createSchedules(api.stack.redis, api.stack.prefix);
    try {
      writeFileSync(join(dir, 'empty.yaml'), 'pipelines: []\n');
      expect((await schedules.applyFile(join(dir, 'empty.yaml'))).removed).toEqual([]);
    } finally {
      await schedules.close();
      rmSync(dir, { recursive: true, force: true });
    }
    const list = await api.call('GET', '/v1/schedules');
    expect(list.body.schedules.map((s: { id: string }) => s.id)).toEqual(['hourly-banner']);
    expect((await api.call('DELETE', '/v1/schedules/hourly-banner')).status).toBe(200);
    expect((await api.call('DELETE', '/v1/schedules/hourly-banner')).body.error.code).toBe('SCHEDULE_NOT_FOUND');
    expect((await api.call('GET', '/v1/schedules')).body.schedules).toEqual([]);
  });

  it('a feed pipeline fetches its JSON items at each tick (SSRF rules apply to the feed URL)', async () => {
    await using api = await startApi();
    const { stack } = api;
    const { createServer } = await import('node:http');
    let served = 0;
    const feed = createServer((_req, res) => {
      served += 1;
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ items: [{ prompt: `Feed item ${served}`, size: '512*512', sku: `F-${served}` }] }));
    });
    await new Promise<void>((r) => feed.listen(0, '127.0.0.1', () => r()));
    const feedUrl = `http://127.0.0.1:${(feed.address() as { port: number }).port}/feed.json`;
    const schedules = createSchedules(stack.redis, stack.prefix);
    const refused = startScheduleRunner({ redisUrl: stack.redisUrl, prefix: stack.prefix, logger, producer: stack.producer, policy: { allowedHosts: [] } });
    try {
      // Without the exception the loopback feed is refused: the tick fails, no batch, nothing fetched.
      await schedules.put('feed', { every: '1s', feed: feedUrl, key: 'feed/{sku}.png' });
      await until(async () => (await schedules.queue.getJobCounts('failed'))['failed']! >= 1);
      expect(served).toBe(0);
      expect(await stack.redis.keys(`${stack.prefix}:batch:sched-feed-*`)).toEqual([]);
      await refused.close();

      const runner = startScheduleRunner({ redisUrl: stack.redisUrl, prefix: stack.prefix, logger, producer: stack.producer, policy: { allowedHosts: ['127.0.0.1'] } });
      try {
        await until(async () => (await stack.redis.keys(`${stack.prefix}:batch:sched-feed-*`)).some((k) => /\d$/.test(k)));
        const key = (await stack.redis.keys(`${stack.prefix}:batch:sched-feed-*`)).find((k) => /\d$/.test(k))!;
        const batchId = key.slice(`${stack.prefix}:batch:`.length);
        await stack.waitForBatch(batchId);
        const [entry] = await stack.producer.batchResults(batchId);
        expect(entry).toMatchObject({ status: 'succeeded' });
        expect(entry!.key).toMatch(/^feed\/F-\d+\.png$/);
        expect(served).toBeGreaterThanOrEqual(1);
      } finally {
        await schedules.remove('feed');
        await runner.close();
      }
    } finally {
      await schedules.close();
      await new Promise<void>((r) => feed.close(() => r()));
    }
  });

  it('reads no file outside ZIMAGE_SCHEDULE_FILES_DIR: the API refuses such paths (and every path while it is unset), a tick refuses a link out of it', async () => {
    const root = mkdtempSync(join(tmpdir(), 'zimage-sched-'));
    const dir = join(root, 'schedules');
    mkdirSync(dir);
    writeFileSync(join(root, '.env'), 'DASHSCOPE_API_KEY=sk-not-for-your-eyes\n');
    writeFileSync(join(dir, 'products.csv'), 'sku,title\nP-1,a lamp\n');
    try {
      const attack = { every: '1s', csv: join(root, '.env'), promptTemplate: 'a cat' };
      {
        await using unset = await startApi({ worker: false });
        const refused = await unset.call('PUT', '/v1/schedules/leak', { body: { ...attack, csv: 'products.csv' } });
        expect([refused.status, refused.body.error.code]).toEqual([400, 'SCHEDULE_INVALID']);
        expect(refused.body.error.issues).toEqual([{ field: 'csv', message: expect.stringContaining('ZIMAGE_SCHEDULE_FILES_DIR') }]);
        expect((await unset.call('GET', '/v1/schedules')).body.schedules).toEqual([]);
      }
      await using api = await startApi({ worker: false }, { scheduleFilesDir: dir });
      for (const csv of [attack.csv, '../.env', 'sub/../../.env', '/dev/zero']) {
        const refused = await api.call('PUT', '/v1/schedules/leak', { body: { ...attack, csv } });
        expect([csv, refused.status, refused.body.error.issues?.[0]?.field]).toEqual([csv, 400, 'csv']);
      }
      // A FIFO inside the folder passes the path rule; opening it would block a reader forever.
      execFileSync('mkfifo', [join(dir, 'pipe.csv')]);
      const fifo = await api.call('PUT', '/v1/schedules/leak', { body: { ...attack, csv: 'pipe.csv' } });
      expect([fifo.status, fifo.body.error.issues]).toEqual([400, [{ field: 'csv', message: expect.stringContaining('not a regular file') }]]);
      expect((await api.call('PUT', '/v1/schedules/fine', { body: { cron: '0 6 * * *', csv: 'products.csv', promptTemplate: 'Studio photo of {title}' } })).status).toBe(201);
      expect((await api.call('GET', '/v1/schedules')).body.schedules.map((s: { id: string }) => s.id)).toEqual(['fine']);

      // A link inside the folder that leads out of it: refused when the schedule is put…
      symlinkSync(join(root, '.env'), join(dir, 'innocent.csv'));
      const linked = await api.call('PUT', '/v1/schedules/linked', { body: { every: '1s', csv: 'innocent.csv', promptTemplate: 'a cat' } });
      expect([linked.status, linked.body.error.issues]).toEqual([400, [{ field: 'csv', message: expect.stringContaining('leads outside ZIMAGE_SCHEDULE_FILES_DIR') }]]);
      // …and at the tick, when the file became a link after it was put (no worker runs ticks until then).
      writeFileSync(join(dir, 'later.csv'), 'title\nlamp\n');
      expect((await api.call('PUT', '/v1/schedules/linked', { body: { every: '1s', csv: 'later.csv', promptTemplate: 'a cat' } })).status).toBe(201);
      rmSync(join(dir, 'later.csv'));
      symlinkSync(join(root, '.env'), join(dir, 'later.csv'));
      const runner = startScheduleRunner({ redisUrl: api.stack.redisUrl, prefix: api.stack.prefix, logger, producer: api.stack.producer, policy: { allowedHosts: [] }, filesDir: dir });
      try {
        const failed = new Promise<string>((resolve, reject) => {
          runner.worker.on('failed', (_job, error) => resolve(error.message));
          setTimeout(() => reject(new Error('no tick failed within 30 s')), 30_000).unref();
        });
        expect(await failed).toMatch(/SCHEDULE_INVALID: csv later\.csv: leads outside ZIMAGE_SCHEDULE_FILES_DIR/);
        expect(await api.stack.redis.keys(`${api.stack.prefix}:batch:sched-linked-*`)).toEqual([]);
      } finally {
        await runner.close();
      }
    } finally {
      rmSync(root, { recursive: true, force: true });
    }
  });
});
