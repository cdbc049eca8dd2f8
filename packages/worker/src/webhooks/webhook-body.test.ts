import { eventIdFor, type ZimageEvent } from '@zimage/shared';
import { describe, expect, it } from 'vitest';
import { buildWebhookBody, MAX_BODY_BYTES } from './webhook-body.js';

const result = {
  jobId: 'j1',
  key: 'catalogue/a.png',
  url: 's3://bucket/catalogue/a.png',
  bytes: 1000,
  sha256: 'ab'.repeat(32),
  width: 512,
  height: 512,
  usedPrompt: 'a cat',
  region: 'singapore' as const,
  attempts: 1,
  regenerations: 0,
  storageSkipped: false,
  estimatedCostUsd: 0.015,
  timings: { queuedMs: 1, generateMs: 2, downloadMs: 3, storeMs: 4, totalMs: 10 },
  completedAt: '2026-11-23T10:00:00.000Z',
};
const succeeded = (prompt = 'a cat'): ZimageEvent => ({
  id: eventIdFor('job.succeeded', 'j1'),
  version: 1,
  type: 'job.succeeded',
  timestamp: '2026-11-23T10:00:00.000Z',
  data: { jobId: 'j1', metadata: { sku: 'A' }, result: { ...result, usedPrompt: prompt } },
});

describe('buildWebhookBody', () => {
  it('is { type, timestamp, data } with the event id and schema version in data', async () => {
    const body = JSON.parse(await buildWebhookBody(succeeded(), undefined));
    expect(Object.keys(body)).toEqual(['type', 'timestamp', 'data']);
    expect(body.data).toMatchObject({ jobId: 'j1', eventId: eventIdFor('job.succeeded', 'j1'), schemaVersion: 1, metadata: { sku: 'A' } });
    expect(body.data.result.downloadUrl).toBeUndefined();
  });

  it('adds a presigned link (never image bytes) when the storage has one', async () => {
    const now = Date.parse('2026-11-23T10:00:00.000Z');
    const storage = { presignedUrl: async (key: string, ttl: number) => `https://bucket.example/${key}?X-Amz-Expires=${ttl}` };
    const body = JSON.parse(await buildWebhookBody(succeeded(), storage, now));
    expect(body.data.result.downloadUrl).toBe('https://bucket.example/catalogue/a.png?X-Amz-Expires=86400');
    expect(body.data.result.downloadUrlExpiresAt).toBe('2026-11-24T10:00:00.000Z');
  });

  it('stays under 20 KB with the longest prompt and the largest metadata', async () => {
    const prompt = '字'.repeat(800);
    const event = succeeded(prompt);
    if (event.type === 'job.succeeded') event.data.metadata = Object.fromEntries(Array.from({ length: 32 }, (_, i) => [`k${i}`, 'v'.repeat(50)]));
    const body = await buildWebhookBody(event, undefined);
    expect(Buffer.byteLength(body)).toBeLessThan(MAX_BODY_BYTES);
  });

  it('refuses to build a body over 20 KB rather than send it', async () => {
    const event = succeeded('x'.repeat(21 * 1024));
    await expect(buildWebhookBody(event, undefined)).rejects.toThrow(/bytes \(limit 20480\)/);
  });
});
