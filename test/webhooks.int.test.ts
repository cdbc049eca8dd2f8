/**
 * Webhooks end to end: real generation, the real dispatcher, a real receiver on loopback that
 * verifies every delivery with the `standardwebhooks` package (not our signing code).
 */
import { createHash } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Redis } from 'ioredis';
import { describe, expect, it } from 'vitest';
import {
  createLogger,
  endpointState,
  enableEndpoint,
  eventIdFor,
  eventsStreamKey,
  generateWebhookSecret,
  isAppError,
  parseWebhookSecrets,
  perJobEndpointId,
  publishJobEvent,
  webhookTargetKey,
  zimageEventSchema,
  type WebhookEndpoint,
} from '@zimage/shared';
import { ingestBatchFile } from '@zimage/producer';
import { deliveryLog, replayEndpoint, replayEvent, startWebhookDispatcher, type WebhookDispatcherOptions } from '@zimage/worker';
import { startApi } from './support/api-harness.js';
import { startStack, type Stack } from './support/stack.js';
import { startS3rver } from './support/s3rver-server.js';
import { startWebhookReceiver, type WebhookReceiver } from './support/webhook-receiver.js';
import { until } from './support/until.js';

const JOB_SECRET = generateWebhookSecret();
const logger = createLogger({ level: process.env['TEST_LOG_LEVEL'] ?? 'silent', pretty: false });

function endpoint(id: string, url: string, events: WebhookEndpoint['events'] = ['job.succeeded', 'job.failed', 'job.expired', 'batch.completed']): WebhookEndpoint & { secret: string } {
  const secret = generateWebhookSecret();
  return { id, url, events, keys: parseWebhookSecrets(secret), secret };
}

async function dispatcherFor(stack: Stack, overrides: Partial<WebhookDispatcherOptions> = {}) {
  return startWebhookDispatcher({
    redisUrl: stack.redisUrl,
    prefix: stack.prefix,
    logger,
    endpoints: [],
    jobSecretKeys: parseWebhookSecrets(JOB_SECRET),
    policy: { allowedHosts: ['127.0.0.1'] },
    retrySchedule: [150, 300, 600],
    timeoutMs: 2_000,
    concurrency: 8,
    storage: stack.storage,
    claimIdleMs: 1_000,
    ...overrides,
  });
}

/** Every key under `prefix` whose contents (of any Redis type) contain each needle. */
async function keysHolding(redis: Redis, prefix: string, needles: readonly string[]): Promise<Record<string, string[]>> {
  const found: Record<string, string[]> = Object.fromEntries(needles.map((n) => [n, []]));
  for await (const keys of redis.scanStream({ match: `${prefix}:*`, count: 500 }) as AsyncIterable<string[]>) {
    for (const key of keys) {
      const type = await redis.type(key);
      const contents =
        type === 'string' ? await redis.get(key)
        : type === 'hash' ? JSON.stringify(await redis.hgetall(key))
        : type === 'list' ? JSON.stringify(await redis.lrange(key, 0, -1))
        : type === 'set' ? JSON.stringify(await redis.smembers(key))
        : type === 'zset' ? JSON.stringify(await redis.zrange(key, '0', '-1'))
        : type === 'stream' ? JSON.stringify(await redis.xrange(key, '-', '+'))
        : `(unread type ${type})`;
      for (const needle of needles) if (`${key} ${contents}`.includes(needle)) found[needle]!.push(key);
    }
  }
  return found;
}

describe('webhooks', () => {
  it('delivers every event signed per Standard Webhooks: job events to the job, batch.completed to the batch and registered endpoints', async () => {
    await using stack = await startStack({ webhookAllowedHosts: ['127.0.0.1'] });
    const jobReceiver = await startWebhookReceiver(JOB_SECRET);
    const crm = endpoint('crm', '', ['batch.completed']);
    const crmReceiver = await startWebhookReceiver(crm.secret);
    crm.url = `${crmReceiver.url}/hooks/zimage?token=abc`;
    const dispatcher = await dispatcherFor(stack, { endpoints: [crm] });
    try {
      const { batchId, jobs } = await stack.producer.enqueueMany(
        [
          { prompt: 'A teapot', size: '512*512', metadata: { sku: 'TEA-1' }, webhook: { url: `${jobReceiver.url}/jobs` } },
          { prompt: 'A kettle', size: '512*512', metadata: { sku: 'KET-1' }, webhook: { url: `${jobReceiver.url}/jobs` } },
          { prompt: 'zimage-test-unsafe content', size: '512*512', webhook: { url: `${jobReceiver.url}/jobs` } },
        ],
        { webhook: { url: `${jobReceiver.url}/batches`, events: ['batch.completed'] } },
      );
      await stack.waitForBatch(batchId);
      await jobReceiver.waitFor((r) => r.length >= 4);
      await crmReceiver.waitFor((r) => r.length >= 1);

      for (const delivery of [...jobReceiver.received, ...crmReceiver.received]) {
        expect(delivery.verifyError).toBeUndefined();
        expect(delivery.headers['content-type']).toBe('application/json');
        expect(Number(delivery.headers['webhook-timestamp'])).toBeCloseTo(Date.now() / 1000, -2);
        expect(Buffer.byteLength(delivery.body)).toBeLessThan(20 * 1024);
        expect(Object.keys(delivery.payload!).sort()).toEqual(['data', 'timestamp', 'type']);
      }
      const byType = (r: WebhookReceiver, type: string) => r.received.filter((d) => d.payload?.type === type);
      const succeeded = byType(jobReceiver, 'job.succeeded');
      expect(succeeded.map((d) => d.path)).toEqual(['/jobs', '/jobs']);
      const first = succeeded.find((d) => d.payload?.data['jobId'] === jobs[0]!.jobId)!;
      expect(first.headers['webhook-id']).toBe(eventIdFor('job.succeeded', jobs[0]!.jobId));
      const view = await stack.producer.getJob(jobs[0]!.jobId);
      expect(first.payload!.data).toMatchObject({ jobId: jobs[0]!.jobId, batchId, metadata: { sku: 'TEA-1' } });
      expect(first.payload!.data['result']).toMatchObject({ key: view!.result!.key, sha256: view!.result!.sha256, bytes: view!.result!.bytes, usedPrompt: 'A teapot' });
      expect(byType(jobReceiver, 'job.failed')).toHaveLength(1);
      expect(byType(jobReceiver, 'job.failed')[0]!.payload!.data['error']).toMatchObject({ code: 'UPSTREAM_CONTENT_REJECTED' });
      // The batch's webhook asked only for batch.completed; the registered endpoint too.
      const batchDone = byType(jobReceiver, 'batch.completed');
      expect(batchDone.map((d) => d.path)).toEqual(['/batches']);
      expect(batchDone[0]!.payload!.data).toMatchObject({ batchId, total: 3, succeeded: 2, failed: 1 });
      expect(crmReceiver.received.map((d) => [d.path, d.payload?.type])).toEqual([['/hooks/zimage?token=abc', 'batch.completed']]);
      expect(crmReceiver.received[0]!.headers['webhook-id']).toBe(eventIdFor('batch.completed', batchId));
      // Each endpoint verifies only with its own secret.
      expect(jobReceiver.received.length).toBe(4);

      const log = await deliveryLog(stack.redis, stack.prefix, eventIdFor('batch.completed', batchId));
      expect(log.map((a) => a.outcome).sort()).toEqual(['delivered', 'delivered']);
      // The log names hosts, never paths or query strings (tokens live there).
      expect(JSON.stringify(log)).not.toContain('token=abc');
    } finally {
      await dispatcher.close();
      await jobReceiver.close();
      await crmReceiver.close();
    }
  });

  it("stores a per-job webhook URL once, in a key of its own: job data, batch records, events, deliveries, the API and the dispatcher's log hold only its id and host", async () => {
    await using api = await startApi({ webhookAllowedHosts: ['127.0.0.1'] });
    const receiver = await startWebhookReceiver(JOB_SECRET);
    const lines: string[] = [];
    const dispatcher = await dispatcherFor(api.stack, { logger: createLogger({ level: 'debug', pretty: false, destination: { write: (line: string) => void lines.push(line) } }) });
    const jobToken = 'tok-job-9f8e7d6c5b4a';
    const batchToken = 'tok-batch-1a2b3c4d5e';
    const rowToken = 'tok-row-0f1e2d3c4b5a';
    const jobUrl = `${receiver.url}/jobs?token=${jobToken}`;
    const rowUrl = `${receiver.url}/rows?token=${rowToken}`;
    const batchUrl = `${receiver.url}/batches/${batchToken}`;
    try {
      const single = await api.call('POST', '/v1/jobs', { body: { prompt: 'A lamp', size: '512*512', webhook: { url: jobUrl } } });
      expect(single.status).toBe(202);
      // The batch's rows name a URL of their own: they go through the batch ingest (and its spill).
      const items = ['A chair', 'A desk'].map((prompt) => ({ prompt, size: '512*512', webhook: { url: rowUrl } }));
      const batch = await api.call('POST', `/v1/batches?webhook=${encodeURIComponent(batchUrl)}&webhookEvents=batch.completed`, { body: items });
      expect(batch.status).toBe(202);
      const batchId = batch.body.batchId as string;
      await api.stack.waitForBatch(batchId);
      await receiver.waitFor((r) => r.length >= 4);
      // The URLs were used as given, tokens and all.
      expect(receiver.received.map((d) => d.path).sort()).toEqual([`/batches/${batchToken}`, `/jobs?token=${jobToken}`, `/rows?token=${rowToken}`, `/rows?token=${rowToken}`]);

      const host = new URL(receiver.url).host;
      const job = await api.call('GET', `/v1/jobs/${single.body.id}`);
      expect(job.body.request.webhook).toEqual({ host });
      for (const read of [job, await api.call('GET', `/v1/batches/${batchId}`), await api.call('GET', `/v1/batches/${batchId}/results`)]) {
        expect(read.status).toBe(200);
        expect(read.text).not.toContain('tok-');
      }
      // One key per URL, however many jobs named it; nothing else in Redis holds either token.
      expect(await keysHolding(api.stack.redis, api.stack.prefix, [jobToken, rowToken, batchToken])).toEqual({
        [jobToken]: [webhookTargetKey(api.stack.prefix, perJobEndpointId(jobUrl))],
        [rowToken]: [webhookTargetKey(api.stack.prefix, perJobEndpointId(rowUrl))],
        [batchToken]: [webhookTargetKey(api.stack.prefix, perJobEndpointId(batchUrl))],
      });
      expect(lines.join('')).not.toContain('tok-');
    } finally {
      await dispatcher.close();
      await receiver.close();
    }
  });

  it('keeps retrying a receiver that is down, then up, with the same webhook-id on every attempt', async () => {
    await using stack = await startStack({ webhookAllowedHosts: ['127.0.0.1'] });
    const receiver = await startWebhookReceiver(JOB_SECRET);
    // Down for the first attempts: connection refused, then 503s, then up.
    await receiver.down();
    receiver.respond((_d, index) => (index < 2 ? { status: 503, body: 'maintenance' } : { status: 200 }));
    const dispatcher = await dispatcherFor(stack, { retrySchedule: [200, 400, 400, 400, 400, 400] });
    try {
      const jobs = await Promise.all(
        ['A', 'B', 'C'].map((letter) => stack.producer.enqueue({ prompt: `Letter ${letter}`, size: '512*512', webhook: { url: `${receiver.url}/hook` } })),
      );
      for (const job of jobs) await stack.waitForJob(job.jobId, (j) => j.state === 'completed');
      const eventIds = jobs.map((j) => eventIdFor('job.succeeded', j.jobId));
      // Every delivery has failed at least once against the closed port before it comes up.
      for (const id of eventIds) await until(async () => (await deliveryLog(stack.redis, stack.prefix, id)).length >= 1);
      await receiver.up();
      await until(async () => (await dispatcher.queue.getJobCounts('completed'))['completed'] === 3);

      // Every event arrived; every delivery to the receiver verified; retries kept the id.
      for (const id of eventIds) {
        const attempts = receiver.received.filter((d) => d.headers['webhook-id'] === id);
        expect(attempts.length).toBeGreaterThanOrEqual(1);
        expect(attempts.every((d) => d.verifyError === undefined)).toBe(true);
        const log = await deliveryLog(stack.redis, stack.prefix, id);
        expect(log.at(-1)).toMatchObject({ outcome: 'delivered', status: 200 });
        expect(log.length).toBeGreaterThanOrEqual(2);
        expect(log[0]).toMatchObject({ outcome: 'failed', attempt: 1 });
        expect(log[0]!.error).toMatch(/ECONNREFUSED/);
        expect(log[0]!.nextAttemptAt).toBeDefined();
      }
      const withStatus = (await Promise.all(eventIds.map((id) => deliveryLog(stack.redis, stack.prefix, id)))).flat().filter((a) => a.status === 503);
      expect(withStatus.length).toBe(2);
      expect(withStatus[0]!.error).toContain('maintenance');
    } finally {
      await dispatcher.close();
      await receiver.close();
    }
  });

  it('honours Retry-After on 429', async () => {
    await using stack = await startStack({ webhookAllowedHosts: ['127.0.0.1'] });
    const receiver = await startWebhookReceiver(JOB_SECRET);
    receiver.respond((_d, index) => (index === 0 ? { status: 429, headers: { 'retry-after': '2' } } : { status: 204 }));
    const dispatcher = await dispatcherFor(stack, { retrySchedule: [50, 50] });
    try {
      await stack.producer.enqueue({ prompt: 'Patience', size: '512*512', webhook: { url: receiver.url } });
      await receiver.waitFor((r) => r.length >= 2, 15_000);
      const gap = receiver.received[1]!.at - receiver.received[0]!.at;
      // The schedule says 50 ms; the receiver said 2 s.
      expect(gap).toBeGreaterThanOrEqual(1_900);
      expect(receiver.received[1]!.headers['webhook-id']).toBe(receiver.received[0]!.headers['webhook-id']);
    } finally {
      await dispatcher.close();
      await receiver.close();
    }
  });

  it('disables an endpoint that answers 410 Gone; later events are dead-lettered without a request; enable + replay delivers them', async () => {
    await using stack = await startStack({ webhookAllowedHosts: ['127.0.0.1'] });
    const gone = endpoint('gone', '', ['job.succeeded']);
    const receiver = await startWebhookReceiver(gone.secret);
    gone.url = `${receiver.url}/gone`;
    receiver.respond(() => ({ status: 410 }));
    const dispatcher = await dispatcherFor(stack, { endpoints: [gone] });
    try {
      const first = await stack.producer.enqueue({ prompt: 'First', size: '512*512' });
      await receiver.waitFor((r) => r.length === 1);
      await until(async () => (await endpointState(stack.redis, stack.prefix, 'gone')) !== undefined);
      const firstEvent = eventIdFor('job.succeeded', first.jobId);
      await until(async () => (await deliveryLog(stack.redis, stack.prefix, firstEvent)).length === 1);
      expect((await deliveryLog(stack.redis, stack.prefix, firstEvent))[0]).toMatchObject({ outcome: 'endpoint-disabled', status: 410, attempt: 1 });

      const second = await stack.producer.enqueue({ prompt: 'Second', size: '512*512' });
      const secondEvent = eventIdFor('job.succeeded', second.jobId);
      await until(async () => (await dispatcher.queue.getJobCounts('failed'))['failed'] === 2);
      expect(receiver.received).toHaveLength(1); // no request to a disabled endpoint
      expect((await deliveryLog(stack.redis, stack.prefix, secondEvent))[0]).toMatchObject({ outcome: 'endpoint-disabled' });

      // The receiver is fixed; the operator re-enables and replays the endpoint's dead letters.
      receiver.respond(() => ({ status: 200 }));
      expect(await enableEndpoint(stack.redis, stack.prefix, 'gone')).toBe(true);
      const replay = await replayEndpoint(dispatcher.queue, 'gone', new Date(Date.now() - 60_000));
      expect(replay.replayed.sort()).toEqual([`${firstEvent}.gone`, `${secondEvent}.gone`].sort());
      await receiver.waitFor((r) => r.filter((d) => d.verifyError === undefined).length === 3);
      expect(new Set(receiver.received.slice(1).map((d) => d.headers['webhook-id']))).toEqual(new Set([firstEvent, secondEvent]));
    } finally {
      await dispatcher.close();
      await receiver.close();
    }
  });

  it('does not follow redirects: a 3xx is a failed attempt, and the target is never called', async () => {
    await using stack = await startStack({ webhookAllowedHosts: ['127.0.0.1'] });
    const receiver = await startWebhookReceiver(JOB_SECRET);
    receiver.respond((d) => (d.path === '/old' ? { status: 301, headers: { location: `${receiver.url}/new` } } : { status: 200 }));
    const dispatcher = await dispatcherFor(stack, { retrySchedule: [100] });
    try {
      const job = await stack.producer.enqueue({ prompt: 'Moved', size: '512*512', webhook: { url: `${receiver.url}/old` } });
      const eventId = eventIdFor('job.succeeded', job.jobId);
      await until(async () => (await dispatcher.queue.getJobCounts('failed'))['failed'] === 1);
      expect(receiver.received.map((d) => d.path)).toEqual(['/old', '/old']);
      const log = await deliveryLog(stack.redis, stack.prefix, eventId);
      expect(log.map((a) => [a.attempt, a.status, a.outcome])).toEqual([
        [1, 301, 'failed'],
        [2, 301, 'dead-lettered'],
      ]);
      expect(log[1]!.error).toContain('redirects are not followed');

      // Dead-lettered → replayable by event id, with a fresh schedule and the same webhook-id.
      receiver.respond(() => ({ status: 200 }));
      const replay = await replayEvent(stack.redis, dispatcher.queue, stack.prefix, eventId);
      expect(replay.replayed).toHaveLength(1);
      await receiver.waitFor((r) => r.length === 3);
      expect(receiver.received[2]!.headers['webhook-id']).toBe(eventId);
      await until(async () => (await deliveryLog(stack.redis, stack.prefix, eventId)).at(-1)?.outcome === 'delivered');
      expect((await deliveryLog(stack.redis, stack.prefix, eventId)).at(-1)).toMatchObject({ attempt: 1, status: 200 });
    } finally {
      await dispatcher.close();
      await receiver.close();
    }
  });

  it('refuses SSRF targets at enqueue, and at delivery time when they get past enqueue', async () => {
    await using stack = await startStack({ worker: false });
    const receiver = await startWebhookReceiver(JOB_SECRET);
    try {
      const targets = [
        `http://127.0.0.1:${receiver.port}/hook`,
        'http://169.254.169.254/latest/meta-data/',
        'http://10.0.0.1/hook',
        `http://[::1]:${receiver.port}/hook`,
        `http://localhost:${receiver.port}/hook`,
        'http://100.100.100.200/latest/meta-data/',
        'http://[::ffff:127.0.0.1]/hook',
      ];
      for (const url of targets) {
        const error = await stack.producer.enqueue({ prompt: 'SSRF', size: '512*512', webhook: { url } }).catch((e: unknown) => e);
        expect(isAppError(error) && error.code, url).toBe('WEBHOOK_URL_REFUSED');
        expect((error as Error).message).toMatch(/webhook\.url: Webhook URL refused: host .+ \((loopback|private|cloud metadata|link-local)\)/);
      }
      const batch = await stack.producer
        .enqueueMany([
          { prompt: 'fine', size: '512*512' },
          { prompt: 'bad', size: '512*512', webhook: { url: 'http://10.0.0.1/x' } },
        ])
        .catch((e: unknown) => e);
      expect(isAppError(batch) && batch.code).toBe('BATCH_INVALID');
      expect((batch as { details: { items: unknown } }).details.items).toEqual([{ index: 1, issues: [expect.objectContaining({ field: 'webhook.url' })] }]);
      // A JSONL file's rows get the same refusal, each with its line (the CLI, NDJSON bodies and schedule ticks ingest files).
      const dir = mkdtempSync(join(tmpdir(), 'zimage-ssrf-'));
      try {
        const file = join(dir, 'rows.jsonl');
        writeFileSync(file, [{ prompt: 'fine' }, { prompt: 'metadata', webhook: { url: 'http://169.254.169.254/x' } }, { prompt: 'fine too' }, { prompt: 'private', webhook: { url: 'http://10.0.0.1/x' } }].map((r) => JSON.stringify(r)).join('\n'));
        const rows = await ingestBatchFile(stack.producer, { path: file, defaults: { size: '512*512' } }).catch((e: unknown) => e);
        expect(isAppError(rows) && rows.code).toBe('BATCH_INVALID');
        expect((rows as { details: { rows: unknown } }).details.rows).toEqual([
          { line: 2, issues: [{ field: 'webhook.url', message: expect.stringMatching(/cloud metadata/) }] },
          { line: 4, issues: [{ field: 'webhook.url', message: expect.stringMatching(/private/) }] },
        ]);
        // At most 100 distinct webhook hosts per batch: each new one costs a DNS look-up.
        const many = join(dir, 'many.jsonl');
        writeFileSync(many, Array.from({ length: 101 }, (_, i) => JSON.stringify({ prompt: `p${i}`, webhook: { url: `https://93.184.${Math.floor(i / 200)}.${(i % 200) + 1}/hook?token=t${i}` } })).join('\n'));
        const tooMany = await ingestBatchFile(stack.producer, { path: many, defaults: { size: '512*512' } }).catch((e: unknown) => e);
        expect((tooMany as { details: { rows: unknown } }).details.rows).toEqual([{ line: 101, issues: [{ field: 'webhook.url', message: expect.stringContaining('more than 100 distinct webhook hosts') }] }]);
      } finally {
        rmSync(dir, { recursive: true, force: true });
      }
      expect(await stack.producer.queue.count()).toBe(0);
      expect(receiver.received).toHaveLength(0);
    } finally {
      await receiver.close();
    }

    // A registered endpoint on loopback without the exception: refused at connect, never called.
    await using stack2 = await startStack();
    const receiver2 = await startWebhookReceiver(JOB_SECRET);
    const local = endpoint('local', `http://localhost:${receiver2.port}/hook`, ['job.succeeded']);
    const dispatcher = await dispatcherFor(stack2, { endpoints: [local], policy: { allowedHosts: [] } });
    try {
      const job = await stack2.producer.enqueue({ prompt: 'inside', size: '512*512' });
      const eventId = eventIdFor('job.succeeded', job.jobId);
      await until(async () => (await dispatcher.queue.getJobCounts('failed'))['failed'] === 1);
      const log = await deliveryLog(stack2.redis, stack2.prefix, eventId);
      expect(log).toEqual([expect.objectContaining({ outcome: 'refused', endpointId: 'local' })]);
      expect(log[0]!.error).toMatch(/loopback/);
      expect(receiver2.received).toHaveLength(0);
    } finally {
      await dispatcher.close();
      await receiver2.close();
    }
  });

  it('emits batch.completed exactly once when the last jobs finish at the same moment on many connections', async () => {
    await using stack = await startStack({ worker: false });
    const size = 12;
    const batchId = await stack.producer.beginBatch({ total: size });
    const connections = Array.from({ length: size }, () => new Redis(stack.redisUrl));
    try {
      await Promise.all(
        connections.map((redis, i) => {
          const jobId = `job-${i}`;
          const event = zimageEventSchema.parse({
            id: eventIdFor('job.expired', jobId),
            version: 1,
            type: 'job.expired',
            timestamp: new Date().toISOString(),
            data: { jobId, batchId, metadata: {}, deadline: new Date().toISOString() },
          });
          if (event.type !== 'job.expired') throw new Error('unreachable');
          // Each publication twice, as a retry after a crash would.
          const publish = () => publishJobEvent(redis, { event, outcome: 'expired', manifest: { jobId, status: 'expired' }, incarnation: 1 }, { prefix: stack.prefix, maxLen: 1000, markerTtlSeconds: 60 });
          return Promise.all([publish(), publish()]);
        }),
      );
      const entries = await stack.redis.xrange(eventsStreamKey(stack.prefix), '-', '+');
      const types = entries.map(([, fields]) => fields[fields.indexOf('type') + 1]);
      expect(types.filter((t) => t === 'batch.completed')).toHaveLength(1);
      expect(types.filter((t) => t === 'job.expired')).toHaveLength(size);
      expect(await stack.producer.getBatch(batchId)).toMatchObject({ total: size, expired: size, pending: 0 });
    } finally {
      for (const c of connections) c.disconnect();
    }
  });

  it('links to the image with a presigned URL when storage is S3', async () => {
    const s3 = await startS3rver();
    await using stack = await startStack({ storage: { s3: { endpoint: s3.endpoint, bucket: s3.bucket } }, webhookAllowedHosts: ['127.0.0.1'] });
    const receiver = await startWebhookReceiver(JOB_SECRET);
    const dispatcher = await dispatcherFor(stack);
    try {
      const job = await stack.producer.enqueue({ prompt: 'A lighthouse', size: '512*512', webhook: { url: receiver.url } });
      await receiver.waitFor((r) => r.length === 1);
      const result = receiver.received[0]!.payload!.data['result'] as { downloadUrl: string; sha256: string; url: string };
      expect(result.url).toMatch(/^s3:\/\//);
      expect(result.downloadUrl).toMatch(/^http:\/\/.+X-Amz-Signature=/);
      const response = await fetch(result.downloadUrl);
      expect(response.status).toBe(200);
      const bytes = new Uint8Array(await response.arrayBuffer());
      expect(createHash('sha256').update(bytes).digest('hex')).toBe(result.sha256);
      expect((await stack.producer.getJob(job.jobId))?.result?.sha256).toBe(result.sha256);
    } finally {
      await dispatcher.close();
      await receiver.close();
      await s3.close();
    }
  });

  it('retries per-job webhooks a worker cannot sign (no ZIMAGE_WEBHOOK_SECRET: another worker may), then dead-letters them, naming the fix', async () => {
    await using stack = await startStack({ webhookAllowedHosts: ['127.0.0.1'] });
    const receiver = await startWebhookReceiver(JOB_SECRET);
    const dispatcher = await dispatcherFor(stack, { jobSecretKeys: undefined });
    try {
      const job = await stack.producer.enqueue({ prompt: 'Unsigned', size: '512*512', webhook: { url: receiver.url } });
      const eventId = eventIdFor('job.succeeded', job.jobId);
      await until(async () => (await dispatcher.queue.getJobCounts('failed'))['failed'] === 1);
      const log = await deliveryLog(stack.redis, stack.prefix, eventId);
      expect(log.map((a) => a.outcome)).toEqual(['failed', 'failed', 'failed', 'dead-lettered']);
      expect(log.every((a) => /ZIMAGE_WEBHOOK_SECRET is not set on this worker/.test(a.error ?? ''))).toBe(true);
      expect(receiver.received).toHaveLength(0);
    } finally {
      await dispatcher.close();
      await receiver.close();
    }
  });
});
