/**
 * The OpenAPI document against the server it describes, and the typed client generated from it
 * against a real listening API (Redis, worker, emulator): the generated types are current, every
 * route is documented and nothing else is, and every answer the client reads matches its schema.
 */
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { apiSchemas, openApiDocument, registeredRoutes } from '@zimage/api';
import { createZimageClient, waitForJob, ZimageApiError } from '@zimage/client';
import { clientSchemaSource } from '../scripts/client-schema-source.js';
import { startApi, TOKEN } from './support/api-harness.js';

const BUDGET_MS = 60_000;

describe('OpenAPI document and typed client', () => {
  it('packages/client/src/schema.ts is exactly what the current document generates (pnpm client:generate)', async () => {
    const committed = readFileSync(new URL('../packages/client/src/schema.ts', import.meta.url), 'utf8');
    expect(committed).toBe(await clientSchemaSource());
  });

  it('documents every route the server registers, with its methods, and no route the server lacks', async () => {
    await using api = await startApi({ worker: false });
    const served = new Set(
      registeredRoutes(api.app)
        .filter((r) => r.method !== 'HEAD' && r.method !== 'OPTIONS')
        // Bull Board's pages and Swagger UI's assets belong to those libraries, not to our contract.
        .filter((r) => !r.url.startsWith('/admin/queues') && !r.url.startsWith('/docs/'))
        .map((r) => `${r.method} ${r.url.replace(/:([A-Za-z]+)/g, '{$1}')}`),
    );
    const documented = new Set(
      Object.entries(openApiDocument().paths).flatMap(([path, item]) => Object.keys(item).map((method) => `${method.toUpperCase()} ${path}`)),
    );
    expect([...served].sort()).toEqual([...documented].sort());
    // What the server hands out is the document itself.
    expect((await api.call('GET', '/openapi.json', { token: null })).body).toEqual(JSON.parse(JSON.stringify(openApiDocument())));
  });

  it('enqueues, waits for and reads a job over HTTP, every answer matching its documented schema', async () => {
    await using api = await startApi();
    const client = createZimageClient({ baseUrl: api.url, token: TOKEN });
    const queued = await client.POST('/v1/jobs', { body: { prompt: 'A brass telescope', size: '512*512', metadata: { sku: 'TEL-1' }, key: 'scopes/{sku}.png' } });
    expect(queued.response.status).toBe(202);
    const accepted = apiSchemas.jobAcceptedSchema.parse(queued.data);
    expect(accepted.key).toBe('scopes/TEL-1.png');

    const job = await waitForJob(client, accepted.id, { timeoutMs: BUDGET_MS, intervalMs: 50 });
    expect(apiSchemas.jobSchema.parse(job)).toMatchObject({ id: accepted.id, state: 'completed', request: { metadata: { sku: 'TEL-1' } } });
    expect(job.result?.key).toBe('scopes/TEL-1.png');
    const read = await client.GET('/v1/jobs/{id}', { params: { path: { id: accepted.id } } });
    expect(apiSchemas.jobSchema.parse(read.data).result?.sha256).toMatch(/^[0-9a-f]{64}$/);

    const ready = await client.GET('/readyz');
    expect(apiSchemas.readySchema.parse(ready.data).ready).toBe(true);
  });

  it('answers bad input with a typed error naming the field, and a missing job as JOB_NOT_FOUND', async () => {
    await using api = await startApi({ worker: false });
    const client = createZimageClient({ baseUrl: api.url, token: TOKEN });
    // @ts-expect-error a misspelt field does not compile against the generated types
    const bad = await client.POST('/v1/jobs', { body: { promt: 'typo', size: '512*512' } });
    expect(bad.response.status).toBe(400);
    expect(bad.error?.error.code).toBe('REQUEST_INVALID');
    expect(bad.error?.error.issues?.map((i) => i.field)).toContain('prompt');

    const missing = await client.GET('/v1/jobs/{id}', { params: { path: { id: 'no-such-job' } } });
    expect(missing.response.status).toBe(404);
    expect(missing.error?.error.code).toBe('JOB_NOT_FOUND');
    const waited = await waitForJob(client, 'no-such-job', { timeoutMs: BUDGET_MS }).catch((error: unknown) => error);
    expect(waited).toBeInstanceOf(ZimageApiError);
    expect((waited as ZimageApiError).code).toBe('JOB_NOT_FOUND');

    const denied = createZimageClient({ baseUrl: api.url, token: 'wrong-token-0123456789' });
    expect((await denied.GET('/v1/schedules')).error?.error.code).toBe('UNAUTHORIZED');
  });

  it('waitForJob over HTTP times out with WAIT_TIMEOUT when no worker takes the job', async () => {
    await using api = await startApi({ worker: false });
    const client = createZimageClient({ baseUrl: api.url, token: TOKEN });
    const { data } = await client.POST('/v1/jobs', { body: { prompt: 'never taken', size: '512*512' } });
    const error = await waitForJob(client, data?.id ?? '', { timeoutMs: 300, intervalMs: 50 }).catch((e: unknown) => e);
    expect((error as ZimageApiError).code).toBe('WAIT_TIMEOUT');
  });

  it('manages pipelines over the typed client: put, get, list, remove', async () => {
    await using api = await startApi({ worker: false });
    const client = createZimageClient({ baseUrl: api.url, token: TOKEN });
    const put = await client.PUT('/v1/schedules/{id}', { params: { path: { id: 'nightly' } }, body: { every: '1h', prompts: ['A quiet harbour'], size: '512*512', enabled: false } });
    expect(put.response.status).toBe(201);
    expect(apiSchemas.schedulePutSchema.parse(put.data)).toMatchObject({ id: 'nightly', change: 'created', source: 'api' });
    const one = await client.GET('/v1/schedules/{id}', { params: { path: { id: 'nightly' } } });
    expect(apiSchemas.scheduleSchema.parse(one.data).spec.every).toBe('1h');
    const all = await client.GET('/v1/schedules');
    expect(apiSchemas.scheduleListSchema.parse(all.data).schedules.map((s) => s.id)).toEqual(['nightly']);
    const removed = await client.DELETE('/v1/schedules/{id}', { params: { path: { id: 'nightly' } } });
    expect(apiSchemas.scheduleRemovedSchema.parse(removed.data).removed).toBe(true);
    expect((await client.GET('/v1/schedules/{id}', { params: { path: { id: 'nightly' } } })).error?.error.code).toBe('SCHEDULE_NOT_FOUND');
  });

  it('serves the API reference page (Swagger UI) and its assets without a token', async () => {
    await using api = await startApi({ worker: false });
    const page = await fetch(`${api.url}/docs`, { redirect: 'follow' });
    expect(page.status).toBe(200);
    const html = await page.text();
    expect(html).toContain('swagger-ui');
    const script = /src="\.?\/?([^"]*swagger-ui-bundle\.js)"/.exec(html)?.[1];
    expect(script).toBeDefined();
    const asset = await fetch(new URL(script as string, page.url));
    expect(asset.status).toBe(200);
    expect((await asset.arrayBuffer()).byteLength).toBeGreaterThan(100_000);
  });
});
