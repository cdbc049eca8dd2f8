/**
 * Budgets through real workers, Redis and the emulator: a hard budget parks the jobs it covers
 * (not failed, attempts kept) before they are sent, publishes `budget.exhausted` once, and never
 * lets spend pass it, also with many calls at once; raising it wakes the parked jobs; a soft one
 * warns once and stops nothing; a call cut off after billing is counted as maybe billed, apart.
 */
import { describe, expect, it } from 'vitest';
import type { ZimageEvent } from '@zimage/shared';
import { startApi } from './support/api-harness.js';
import { startStack } from './support/stack.js';
import { until } from './support/until.js';

const BUDGET_MS = 60_000;
const PRICE = 0.015;
const requests = (n: number, extra: Record<string, unknown> = {}) => Array.from({ length: n }, (_, i) => ({ prompt: `A ceramic tile ${i}`, size: '512*512', ...extra }));

describe('budgets', () => {
  it('parks what a hard batch budget cannot fit, announces it once, and runs the rest when the budget is raised', async () => {
    await using stack = await startStack({ worker: false });
    const { batchId, jobs } = await stack.producer.enqueueMany(requests(6));
    await stack.producer.setBudget({ id: 'tiles', scope: 'batch', subject: batchId, limitUsd: 3 * PRICE });
    await stack.startWorker({ concurrency: 4 });

    await until(async () => {
      const budget = await stack.producer.getBudget('tiles');
      return budget?.parkedJobs === 3 && budget.usage.inFlight === 0;
    }, BUDGET_MS);
    const parked = await stack.producer.getBudget('tiles');
    expect(parked?.usage).toMatchObject({ spentUsd: 3 * PRICE, maybeBilledUsd: 0, reservedUsd: 0, remainingUsd: 0 });
    expect(stack.emulator.stats().requests).toBe(3);
    const states = await Promise.all(jobs.map(async (j) => (await stack.producer.getJob(j.jobId))?.state));
    expect(states.filter((s) => s === 'delayed')).toHaveLength(3);
    expect((await stack.producer.getBatch(batchId))?.failed).toBe(0);
    const exhausted = (await stack.events()).filter((e): e is Extract<ZimageEvent, { type: 'budget.exhausted' }> => e.type === 'budget.exhausted');
    expect(exhausted).toHaveLength(1);
    expect(exhausted[0]?.data).toMatchObject({ budgetId: 'tiles', scope: 'batch', subject: batchId, limitUsd: 3 * PRICE, periodKey: 'all' });
    // Announced by the first job refused: the three that fit were spent or still in flight.
    expect((exhausted[0]?.data.spentUsd ?? 0) + (exhausted[0]?.data.reservedUsd ?? 0)).toBeCloseTo(3 * PRICE, 9);

    const raised = await stack.producer.setBudget({ id: 'tiles', scope: 'batch', subject: batchId, limitUsd: 6 * PRICE });
    expect(raised.woken).toBe(3);
    expect(await stack.waitForBatch(batchId, BUDGET_MS)).toMatchObject({ succeeded: 6, failed: 0 });
    expect(stack.emulator.stats().requests).toBe(6);
    expect((await stack.producer.getBudget('tiles'))?.usage.spentUsd).toBeCloseTo(6 * PRICE, 9);
  });

  it('never lets spend pass a hard budget with many calls in flight at once', async () => {
    await using stack = await startStack({ worker: false, emulator: { latency: { minMs: 50, maxMs: 150 } } });
    await stack.producer.setBudget({ id: 'all-accounts', scope: 'account', subject: '*', limitUsd: 0.1, period: 'day' });
    const { jobs } = await stack.producer.enqueueMany(requests(20));
    await stack.startWorker({ concurrency: 8 });
    await until(async () => {
      const budget = await stack.producer.getBudget('all-accounts');
      return budget?.parkedJobs === 14 && budget.usage.inFlight === 0;
    }, BUDGET_MS);
    const budget = await stack.producer.getBudget('all-accounts');
    // 0.1 fits six images at 0.015: the seventh would pass it.
    expect(stack.emulator.stats().requests).toBe(6);
    expect(budget?.usage.spentUsd).toBeCloseTo(0.09, 9);
    expect(budget?.usage.spentUsd).toBeLessThanOrEqual(0.1);
    expect(budget?.usage.periodKey).toBe(new Date().toISOString().slice(0, 10));
    expect(jobs).toHaveLength(20);
  });

  it('warns once at a soft budget and stops nothing; a tenant budget covers only that tenant', async () => {
    await using stack = await startStack({ worker: false });
    await stack.producer.setBudget({ id: 'acme-soft', scope: 'tenant', subject: 'acme', limitUsd: 2 * PRICE, kind: 'soft' });
    const acme = await stack.producer.enqueueMany(requests(4, { tenant: 'acme' }));
    const other = await stack.producer.enqueueMany(requests(2, { tenant: 'globex' }));
    await stack.startWorker();
    await stack.waitForBatch(acme.batchId, BUDGET_MS);
    await stack.waitForBatch(other.batchId, BUDGET_MS);
    const warnings = (await stack.events()).filter((e) => e.type === 'budget.warning');
    expect(warnings).toHaveLength(1);
    expect(warnings[0]?.data).toMatchObject({ budgetId: 'acme-soft', kind: 'soft' });
    expect((await stack.producer.getBudget('acme-soft'))?.usage.spentUsd).toBeCloseTo(4 * PRICE, 9);
  });

  it('counts a call cut off after it was billed as maybe billed, apart from what was spent', async () => {
    await using stack = await startStack({ worker: false });
    await stack.producer.setBudget({ id: 'b', scope: 'account', subject: '*', limitUsd: 1 });
    const { batchId } = await stack.producer.enqueueMany(requests(1));
    stack.emulator.failNext('dropAfterBilling');
    await stack.startWorker();
    expect(await stack.waitForBatch(batchId, BUDGET_MS)).toMatchObject({ succeeded: 1 });
    expect((await stack.producer.getBudget('b'))?.usage).toMatchObject({ spentUsd: PRICE, maybeBilledUsd: PRICE, reservedUsd: 0, inFlight: 0 });
    // The batch counts it too, apart from its spend.
    expect(await stack.producer.getBatch(batchId)).toMatchObject({ costUsd: PRICE, maybeBilledUsd: PRICE, running: 0 });
  });

  it("counts a batch's running jobs live: those a worker holds now", async () => {
    await using stack = await startStack({ worker: false, emulator: { latency: { minMs: 1500, maxMs: 1500 } } });
    const { batchId } = await stack.producer.enqueueMany(requests(3));
    expect(await stack.producer.getBatch(batchId)).toMatchObject({ pending: 3, running: 0 });
    await stack.startWorker({ concurrency: 2, adaptiveConcurrency: false });
    await until(async () => (await stack.producer.getBatch(batchId))?.running === 2, BUDGET_MS);
    expect((await stack.producer.listBatches()).batches[0]).toMatchObject({ batchId, running: 2 });
    expect(await stack.waitForBatch(batchId, BUDGET_MS)).toMatchObject({ succeeded: 3, running: 0, pending: 0 });
  });

  it('refuses a bad budget naming each field, and an unknown one', async () => {
    await using stack = await startStack({ worker: false });
    await expect(stack.producer.setBudget({ id: 'x y', scope: 'planet' as 'tenant', subject: 'a', limitUsd: -1 })).rejects.toMatchObject({
      code: 'REQUEST_INVALID',
      message: expect.stringMatching(/id: must match.*scope: must be one of account, batch, pipeline, tenant.*limitUsd: must be more than 0/s),
    });
    await expect(stack.producer.removeBudget('nope')).rejects.toMatchObject({ code: 'BUDGET_NOT_FOUND' });
  });

  it('is GET, PUT and DELETE /v1/budgets/:id over HTTP, with usage', async () => {
    await using api = await startApi({ worker: false });
    const put = await api.call('PUT', '/v1/budgets/monthly', { body: { scope: 'account', subject: '*', limitUsd: 25, period: 'month' } });
    expect(put.status, put.text).toBe(200);
    expect(put.body).toMatchObject({ id: 'monthly', kind: 'hard', period: 'month', usage: { spentUsd: 0, remainingUsd: 25 }, parkedJobs: 0, woken: 0 });
    const bad = await api.call('PUT', '/v1/budgets/monthly', { body: { scope: 'account', subject: '*', limitUsd: 'lots' } });
    expect(bad.status).toBe(400);
    expect(bad.body.error.issues.map((i: { field: string }) => i.field)).toEqual(['limitUsd']);
    expect((await api.call('GET', '/v1/budgets')).body.budgets.map((b: { id: string }) => b.id)).toEqual(['monthly']);
    expect((await api.call('DELETE', '/v1/budgets/monthly')).body).toEqual({ id: 'monthly', removed: true, woken: 0 });
    expect((await api.call('GET', '/v1/budgets/monthly')).status).toBe(404);
  });
});
