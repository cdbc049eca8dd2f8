/**
 * Scheduled pipelines: a pipelines file applied twice changes nothing, a schedule fires and each
 * tick is an ordinary batch, removing it from the file removes it; the API manages its own.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { createSchedules, startScheduleRunner } from '@zimage/producer';
import { createLogger, isAppError } from '@zimage/shared';
import { startApi } from './support/api-harness.js';
import { until } from './support/until.js';

const logger = createLogger({ level: process.env['TEST_LOG_LEVEL'] ?? 'silent', pretty: false });


describe('scheduled pipelines', () => {
  it('applies a file idempotently, fires ticks as ordinary batches, and removes a pipeline dropped from the file', async () => {
    await using api = await startApi();
    const { stack } = api;
    const dir = mkdtempSync(join(tmpdir(), 'zimage-sched-'));
    const schedules = createSchedules(stack.redis, stack.prefix);
    const runner = startScheduleRunner({ redisUrl: stack.redisUrl, prefix: stack.prefix, logger, producer: stack.producer, policy: { allowedHosts: [] } });
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
      expect(await schedules.applyFile(file)).toEqual({ created: ['daily-special', 'catalogue'], updated: [], unchanged: [], removed: [] });
      const before = await schedules.get('catalogue');
      expect(before?.nextRunAt).toMatch(/T22:00:00\.000Z$/); // 06:00 in Shanghai
      expect(before?.spec.csv).toBe(join(dir, 'products.csv')); // relative to the file
      expect(await schedules.applyFile(file)).toEqual({ created: [], updated: [], unchanged: ['daily-special', 'catalogue'], removed: [] });
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

      // Dropping the pipeline from the file removes its schedule: no more ticks.
      writeFileSync(file, both.slice(0, both.indexOf('  - id: daily-special')) + both.slice(both.indexOf('  - id: catalogue')));
      expect(await schedules.applyFile(file)).toEqual({ created: [], updated: [], unchanged: ['catalogue'], removed: ['daily-special'] });
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
      expect(fields).toEqual(expect.arrayContaining(['pipelines[1].cron', 'pipelines[2].tz', 'pipelines[3].cron', 'pipelines[4].prompts', 'pipelines[5].id', 'pipelines[5].every', 'pipelines[5].colour']));
      expect(await schedules.list()).toEqual([]);
      expect(await schedules.queue.getJobSchedulersCount()).toBe(0);
    } finally {
      await schedules.close();
      rmSync(dir, { recursive: true, force: true });
    }
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
});
