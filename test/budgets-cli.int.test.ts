/**
 * `zimage budgets` and `zimage quota` as an operator runs them, against real Redis, a worker and
 * the emulator: set a budget, see it fill and park jobs, raise it (waking them), read its usage,
 * remove it; bad input is refused naming the flag or field, and nothing is written.
 */
import { describe, expect, it } from 'vitest';
import { runCli } from './support/run-cli.js';
import { startStack, type Stack } from './support/stack.js';
import { until } from './support/until.js';

const BUDGET_MS = 90_000;
const env = (stack: Stack) => ({ REDIS_URL: stack.redisUrl, ZIMAGE_PREFIX: stack.prefix, STORAGE_URL: `file:${stack.outputDir}` });

describe('zimage budgets and zimage quota', () => {
  it('sets, lists, reads and removes a budget; the jobs it parks run when it is raised', async () => {
    await using stack = await startStack({ worker: false });
    const set = await runCli(['budgets', 'set', 'acme', '--scope', 'tenant', '--subject', 'acme', '--limit', '0.03', '--period', 'day', '--json'], env(stack), BUDGET_MS);
    expect(set.code).toBe(0);
    expect(JSON.parse(set.stdout)).toMatchObject({ id: 'acme', scope: 'tenant', subject: 'acme', limitUsd: 0.03, kind: 'hard', period: 'day', woken: 0 });

    const { batchId } = await stack.producer.enqueueMany(Array.from({ length: 4 }, (_, i) => ({ prompt: `A tile ${i}`, size: '512*512', tenant: 'acme' })));
    await stack.startWorker();
    await until(async () => (await stack.producer.getBudget('acme'))?.parkedJobs === 2 && (await stack.producer.getBatch(batchId))?.succeeded === 2, BUDGET_MS);

    const usage = await runCli(['budgets', 'usage', 'acme'], env(stack), BUDGET_MS);
    expect(usage.code).toBe(0);
    expect(usage.stdout).toContain('spent $0.030');
    expect(usage.stdout).toContain('2 jobs parked');
    const raised = await runCli(['budgets', 'set', 'acme', '--scope', 'tenant', '--subject', 'acme', '--limit', '1', '--period', 'day'], env(stack), BUDGET_MS);
    expect(raised.stdout).toContain('woke 2 parked jobs');
    expect(await stack.waitForBatch(batchId, BUDGET_MS)).toMatchObject({ succeeded: 4 });

    const listed = JSON.parse((await runCli(['budgets', 'list', '--json'], env(stack), BUDGET_MS)).stdout);
    expect(listed.budgets).toHaveLength(1);
    expect(listed.budgets[0].usage.spentUsd).toBeCloseTo(0.06, 9);
    const quota = JSON.parse((await runCli(['quota', '--json'], env(stack), BUDGET_MS)).stdout);
    expect(quota.budgets.map((b: { id: string }) => b.id)).toEqual(['acme']);
    expect(quota.accounts.map((a: { id: string }) => a.id)).toEqual(['test']);

    expect((await runCli(['budgets', 'remove', 'acme'], env(stack), BUDGET_MS)).stdout).toContain('removed budget acme');
    const gone = await runCli(['budgets', 'usage', 'acme'], env(stack), BUDGET_MS);
    expect(gone.code).not.toBe(0);
    expect(gone.stderr).toContain('BUDGET_NOT_FOUND');
  });

  it('refuses bad input naming the flag or the field, and writes nothing', async () => {
    await using stack = await startStack({ worker: false });
    const limit = await runCli(['budgets', 'set', 'x', '--scope', 'tenant', '--subject', 'acme', '--limit', 'ten'], env(stack), BUDGET_MS);
    expect(limit.code).not.toBe(0);
    expect(limit.stderr).toContain('--limit must be a number of US$');
    const subject = await runCli(['budgets', 'set', 'x', '--scope', 'tenant', '--subject', '*', '--limit', '5'], env(stack), BUDGET_MS);
    expect(subject.code).not.toBe(0);
    expect(subject.stderr).toContain('subject: * (every account together) goes with scope account');
    expect(await stack.producer.listBudgets()).toEqual([]);
  });
});
