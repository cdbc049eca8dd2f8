/**
 * Budgets: a limit in US$ on what one account, batch, pipeline or tenant may spend, per UTC day,
 * week (from Monday), month, or in all. A hard budget stops (parks) the jobs it covers before
 * they are sent upstream; a soft one only warns (`budget.warning`, once per period).
 *
 * Pure: the rules, the periods and which budgets cover a job. Redis lives in budget-store.ts.
 */
import { z } from 'zod';
import { BATCH_ID_PATTERN, BATCH_ID_RULE, NAME_PATTERN, NAME_RULE, nameSchema } from '../ids.js';

export const BUDGET_SCOPES = ['account', 'batch', 'pipeline', 'tenant'] as const;
export type BudgetScope = (typeof BUDGET_SCOPES)[number];
export const BUDGET_PERIODS = ['day', 'week', 'month', 'none'] as const;
export type BudgetPeriod = (typeof BUDGET_PERIODS)[number];

/** Budgets are counted in micro-dollars: integers add up exactly in Redis. */
export const MICRO_USD = 1_000_000;

/** The fields of a budget, without the rule between them (for documents that describe it). */
export const budgetFields = z.strictObject({
  id: nameSchema,
  scope: z.enum(BUDGET_SCOPES, { error: `must be one of ${BUDGET_SCOPES.join(', ')}` }),
  /** The account id, batch id, pipeline (schedule) id or tenant it covers; `*` for every account together. */
  subject: z.string({ error: 'must be a string' }).refine((s) => s === '*' || BATCH_ID_PATTERN.test(s), { error: `${BATCH_ID_RULE}, or be * (every account together)` }),
  limitUsd: z.number({ error: 'must be a number of US$' }).positive({ error: 'must be more than 0' }).max(10_000_000, { error: 'must be at most 10000000' }),
  kind: z.enum(['hard', 'soft'], { error: 'must be hard or soft' }).default('hard'),
  period: z.enum(BUDGET_PERIODS, { error: `must be one of ${BUDGET_PERIODS.join(', ')}` }).default('none'),
});

export const budgetSchema = budgetFields.superRefine((budget, ctx) => {
  if (budget.subject === '*' && budget.scope !== 'account') ctx.addIssue({ code: 'custom', path: ['subject'], message: '* (every account together) goes with scope account' });
  // Only a batch id may hold a `.` ({tenant}.{name}).
  else if (budget.subject !== '*' && budget.scope !== 'batch' && !NAME_PATTERN.test(budget.subject)) ctx.addIssue({ code: 'custom', path: ['subject'], message: `${NAME_RULE} (a ${budget.scope})` });
});
export type Budget = z.output<typeof budgetSchema>;
export type BudgetInput = z.input<typeof budgetSchema>;

/** A budgets file or ZIMAGE_BUDGETS: an array, validated whole, ids unique. */
export const budgetListSchema = z.array(budgetSchema).superRefine((budgets, ctx) => {
  const seen = new Map<string, number>();
  budgets.forEach((budget, i) => {
    const first = seen.get(budget.id);
    if (first !== undefined) ctx.addIssue({ code: 'custom', path: [i, 'id'], message: `"${budget.id}" is also the id of budget ${first}` });
    else seen.set(budget.id, i);
  });
});

/** What a job is, for the budgets that may cover it. */
export interface BudgetSubject {
  accountId: string;
  batchId?: string | undefined;
  pipeline?: string | undefined;
  tenant?: string | undefined;
}

export function coversJob(budget: Budget, job: BudgetSubject): boolean {
  switch (budget.scope) {
    case 'account':
      return budget.subject === '*' || budget.subject === job.accountId;
    case 'batch':
      return budget.subject === job.batchId;
    case 'pipeline':
      return budget.subject === job.pipeline;
    case 'tenant':
      return budget.subject === job.tenant;
  }
}

export interface PeriodWindow {
  /** Names the period in Redis keys and event ids: `2026-12-03`, `w2026-11-30` (its Monday), `2026-12`, `all`. */
  key: string;
  /** Epoch ms when the next period starts; undefined for `none`. */
  endsAt: number | undefined;
}

/** The UTC period `now` falls in. */
export function periodWindow(period: BudgetPeriod, now: number): PeriodWindow {
  const date = new Date(now);
  const y = date.getUTCFullYear();
  const m = date.getUTCMonth();
  const d = date.getUTCDate();
  switch (period) {
    case 'day':
      return { key: isoDate(Date.UTC(y, m, d)), endsAt: Date.UTC(y, m, d + 1) };
    case 'week': {
      const monday = d - ((date.getUTCDay() + 6) % 7);
      return { key: `w${isoDate(Date.UTC(y, m, monday))}`, endsAt: Date.UTC(y, m, monday + 7) };
    }
    case 'month':
      return { key: isoDate(Date.UTC(y, m, 1)).slice(0, 7), endsAt: Date.UTC(y, m + 1, 1) };
    case 'none':
      return { key: 'all', endsAt: undefined };
  }
}

function isoDate(ms: number): string {
  return new Date(ms).toISOString().slice(0, 10);
}

export function toMicroUsd(usd: number): number {
  return Math.round(usd * MICRO_USD);
}

/** ZIMAGE_BUDGETS: a JSON array of budgets, validated whole; throws naming each bad entry and field. */
export function parseBudgets(text: string): Budget[] {
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch {
    throw new Error('must be a JSON array of budgets, e.g. [{"id":"daily","scope":"account","subject":"*","limitUsd":50,"period":"day"}]');
  }
  const parsed = budgetListSchema.safeParse(json);
  if (!parsed.success) throw new Error(parsed.error.issues.map((i) => `[${i.path.join('.')}]: ${i.message}`).join('; '));
  return parsed.data;
}
