/**
 * Budgets as callers manage them (`PUT /v1/budgets/:id`, `zimage budgets`): list with usage, set,
 * remove. Raising or removing a budget wakes the jobs parked on it at once (they are delayed in
 * BullMQ until their period would roll over); a job still over a budget parks again.
 */
import { AppError, budgetSchema, BudgetStore, formatFieldIssues, toFieldIssues, type Budget, type BudgetInput, type BudgetUsage } from '@zimage/shared';
import { Job } from 'bullmq';
import type { ProducerContext } from './producer-context.js';

export interface BudgetView extends Budget {
  usage: BudgetUsage;
  /** Jobs parked on it, waiting for the period to roll over or the budget to be raised. */
  parkedJobs: number;
}

export async function listBudgets(context: ProducerContext, now = Date.now()): Promise<BudgetView[]> {
  const store = new BudgetStore(context.connection, context.prefix);
  return Promise.all((await store.list()).map(async (budget) => viewOf(store, budget, now)));
}

export async function getBudget(context: ProducerContext, id: string, now = Date.now()): Promise<BudgetView | null> {
  const store = new BudgetStore(context.connection, context.prefix);
  const budget = await store.get(id);
  return budget ? viewOf(store, budget, now) : null;
}

/** Creates or replaces a budget (validated whole), then wakes the jobs parked on it. */
export async function setBudget(context: ProducerContext, input: BudgetInput): Promise<BudgetView & { woken: number }> {
  const parsed = budgetSchema.safeParse(input);
  if (!parsed.success) {
    const issues = toFieldIssues(parsed.error, input);
    throw new AppError('REQUEST_INVALID', `budget: ${formatFieldIssues(issues)}`, { details: { issues } });
  }
  const store = new BudgetStore(context.connection, context.prefix);
  await store.set(parsed.data);
  const woken = await wakeParked(context, store, parsed.data.id);
  return { ...(await viewOf(store, parsed.data, Date.now())), woken };
}

/** Removes a budget and wakes the jobs parked on it. Throws BUDGET_NOT_FOUND. */
export async function removeBudget(context: ProducerContext, id: string): Promise<{ woken: number }> {
  const store = new BudgetStore(context.connection, context.prefix);
  if (!(await store.remove(id))) throw new AppError('BUDGET_NOT_FOUND', `no budget ${id}`);
  return { woken: await wakeParked(context, store, id) };
}

async function wakeParked(context: ProducerContext, store: BudgetStore, id: string): Promise<number> {
  let woken = 0;
  for (const jobId of await store.takeParked(id)) {
    const job = await Job.fromId(context.queue, jobId);
    if (!job || !(await job.isDelayed())) continue;
    // Promoted between the check and now (its delay ran out) is fine: it runs either way.
    await job.promote().catch(() => undefined);
    woken += 1;
  }
  return woken;
}

async function viewOf(store: BudgetStore, budget: Budget, now: number): Promise<BudgetView> {
  return { ...budget, usage: await store.usage(budget, now), parkedJobs: await store.countParked(budget.id) };
}
