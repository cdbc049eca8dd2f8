/**
 * Tenants' API tokens (ZIMAGE_API_TENANT_TOKENS), over real HTTP, Redis and the producer: what a
 * tenant's token enqueues is its tenant's, it cannot enqueue for another, its idempotency keys
 * are its own, it reads only its own jobs and batches (others' are "not found"), and every
 * operator endpoint — budgets, weights, bulk operations, cancel, listings, pages — refuses it.
 */
import { describe, expect, it } from 'vitest';
import { startApi } from './support/api-harness.js';

const ACME = 'acme-token-0123456789abcdef';
const GLOBEX = 'globex-token-0123456789abcd';
const tenantTokens = new Map([
  [ACME, 'acme'],
  [GLOBEX, 'globex'],
]);
const job = (extra: Record<string, unknown> = {}) => ({ prompt: 'A red bicycle', size: '512*512', ...extra });

describe("tenants' API tokens", () => {
  it('enqueue for their tenant only, under idempotency keys of their own, and read only their own jobs', async () => {
    await using api = await startApi({ worker: false }, { tenantTokens });
    const mine = await api.call('POST', '/v1/jobs', { body: job(), token: ACME });
    expect(mine.status).toBe(202);
    expect((await api.stack.producer.getJob(mine.body.id))?.payload.tenant).toBe('acme');
    // What it writes is under its tenant's prefix: it cannot overwrite another tenant's objects.
    expect(mine.body.key).toMatch(/^tenants\/acme\/images\//);
    const keyed = await api.call('POST', '/v1/jobs', { body: job({ key: 'catalogue/{sku}.png', metadata: { sku: 'B-1' } }), token: ACME });
    expect(keyed.body.key).toBe('tenants/acme/catalogue/B-1.png');
    const cached = await api.call('POST', '/v1/jobs', { body: job({ seed: 7, cache: true }), token: ACME });
    expect((await api.stack.producer.getJob(cached.body.id))?.payload.cache?.namespace).toBe('tenant:acme:default');
    expect((await api.call('POST', '/v1/jobs', { body: job({ tenant: 'acme' }), token: ACME })).status).toBe(202);

    const other = await api.call('POST', '/v1/jobs', { body: job({ tenant: 'globex' }), token: ACME });
    expect(other.status).toBe(400);
    expect(other.body.error).toMatchObject({ code: 'REQUEST_INVALID' });
    expect(other.body.error.message).toContain("tenant: must be acme (the API token's tenant) or left out");

    // The same idempotency key from two tenants: two jobs, neither sees the other's.
    const a = await api.call('POST', '/v1/jobs', { body: job({ idempotencyKey: 'order-1' }), token: ACME, headers: { 'idempotency-key': 'k-1' } });
    const g = await api.call('POST', '/v1/jobs', { body: job({ idempotencyKey: 'order-1' }), token: GLOBEX, headers: { 'idempotency-key': 'k-1' } });
    expect([a.status, g.status]).toEqual([202, 202]);
    expect(g.body.created).toBe(true);
    expect(g.body.id).not.toBe(a.body.id);
    expect(g.headers.get('idempotent-replayed')).toBeNull();

    expect((await api.call('GET', `/v1/jobs/${a.body.id}`, { token: ACME })).status).toBe(200);
    const probed = await api.call('GET', `/v1/jobs/${a.body.id}`, { token: GLOBEX });
    expect(probed.status).toBe(404);
    expect(probed.body.error.code).toBe('JOB_NOT_FOUND');
    // An operator's token sees every tenant's jobs.
    expect((await api.call('GET', `/v1/jobs/${g.body.id}`)).status).toBe(200);
  });

  it("create batches that are their tenant's, refuse rows for another tenant, and hide batches from other tenants", async () => {
    await using api = await startApi({ worker: false }, { tenantTokens });
    const refused = await api.call('POST', '/v1/batches', { body: [job(), job({ tenant: 'globex' })], token: ACME });
    expect(refused.status).toBe(400);
    expect(JSON.stringify(refused.body)).toContain("must be acme (the API token's tenant) or left out");
    expect((await api.stack.producer.listBatches()).batches).toHaveLength(0);

    const created = await api.call('POST', '/v1/batches', { body: [job(), job({ prompt: 'A blue bicycle' })], token: ACME });
    expect(created.status).toBe(202);
    const { jobs } = await api.stack.producer.listJobs({ batchId: created.body.batchId });
    expect(jobs.map((j) => j.payload.tenant)).toEqual(['acme', 'acme']);
    expect((await api.call('GET', `/v1/batches/${created.body.batchId}`, { token: ACME })).status).toBe(200);
    expect((await api.call('GET', `/v1/batches/${created.body.batchId}`, { token: GLOBEX })).status).toBe(404);
    expect((await api.call('GET', `/v1/batches/${created.body.batchId}/results`, { token: GLOBEX })).status).toBe(404);
    const operators = await api.stack.producer.enqueueMany([job()]);
    expect((await api.call('GET', `/v1/batches/${operators.batchId}`, { token: ACME })).status).toBe(404);
    // Nor can it add jobs to a batch that is not its own (its counts, budgets and gallery).
    const joined = await api.call('POST', '/v1/jobs', { body: job({ batchId: operators.batchId }), token: ACME });
    expect(joined.status).toBe(404);
    expect((await api.stack.producer.getBatch(operators.batchId))?.total).toBe(1);
    expect((await api.call('POST', '/v1/jobs', { body: job({ batchId: created.body.batchId }), token: ACME })).status).toBe(202);
    expect((await api.stack.producer.getBatch(created.body.batchId))?.total).toBe(3);
  });

  it("name the batches they choose {tenant}.{name}, so they cannot take or probe another's batch id; nobody takes a schedule tick's id", async () => {
    await using api = await startApi({ worker: false }, { tenantTokens });
    // The operator's batch id, and a tick's the scheduler will make, are out of a tenant's reach.
    const plain = await api.call('POST', '/v1/batches?batchId=catalogue-2026-12', { body: [job()], token: ACME });
    expect(plain.status).toBe(400);
    expect(plain.body.error.message).toBe("batchId: this token's batches are named acme.{name} (it is tenant acme's)");
    const foreign = await api.call('POST', '/v1/batches?batchId=globex.catalogue', { body: [job()], token: ACME });
    expect(foreign.status).toBe(400);
    const tick = `sched-hero-${Date.parse('2026-12-05T06:00:00Z')}`;
    expect((await api.call('POST', `/v1/batches?batchId=${tick}`, { body: [job()], token: ACME })).status).toBe(400);
    const operatorTick = await api.call('POST', `/v1/batches?batchId=${tick}`, { body: [job()] });
    expect(operatorTick.status).toBe(400);
    expect(operatorTick.body.error.message).toContain('sched-{pipeline}-{time} ids are the batches of schedule ticks');
    expect((await api.stack.producer.listBatches()).batches).toHaveLength(0);

    // Under its own tenant it names them as it likes; another tenant's same name is another batch.
    const mine = await api.call('POST', '/v1/batches?batchId=acme.catalogue', { body: [job()], token: ACME });
    expect(mine.status).toBe(202);
    expect(mine.body.batchId).toBe('acme.catalogue');
    expect((await api.call('POST', '/v1/batches?batchId=globex.catalogue', { body: [job()], token: GLOBEX })).status).toBe(202);
    expect((await api.call('GET', '/v1/batches/acme.catalogue', { token: ACME })).status).toBe(200);
    expect((await api.call('GET', '/v1/batches/acme.catalogue', { token: GLOBEX })).status).toBe(404);
    expect((await api.call('POST', '/v1/jobs', { body: job({ batchId: 'acme.catalogue' }), token: ACME })).status).toBe(202);
    expect((await api.stack.producer.getBatch('acme.catalogue'))?.total).toBe(2);
  });

  it('may not call any operator endpoint, and an unknown token is still unauthorised', async () => {
    await using api = await startApi({ worker: false }, { tenantTokens });
    const { jobId } = await api.stack.producer.enqueue(job({ tenant: 'acme' }));
    const calls: [string, string, unknown?][] = [
      ['PUT', '/v1/budgets/mine', { scope: 'tenant', subject: 'acme', limitUsd: 1000 }],
      ['GET', '/v1/budgets'],
      ['PUT', '/v1/tenants/acme', { weight: 1000 }],
      ['GET', '/v1/quota'],
      ['POST', '/v1/jobs/bulk', { action: 'cancel', batchId: 'b' }],
      ['DELETE', `/v1/jobs/${jobId}`],
      ['GET', '/v1/jobs?state=waiting'],
      ['GET', '/v1/batches'],
      ['GET', '/v1/schedules'],
      ['GET', '/quota'],
      ['GET', '/batches'],
      ['GET', '/metrics'],
    ];
    for (const [method, path, body] of calls) {
      const answer = await api.call(method, path, { token: ACME, ...(body === undefined ? {} : { body }) });
      expect({ method, path, status: answer.status, code: answer.body?.error?.code }).toEqual({ method, path, status: 403, code: 'FORBIDDEN' });
    }
    expect(await api.stack.producer.listBudgets()).toEqual([]);
    expect((await api.stack.producer.getJob(jobId))?.state).not.toBe('cancelled');
    expect((await api.call('GET', '/v1/budgets', { token: 'unknown-token-0123456789' })).status).toBe(401);
  });
});
