import { describe, expect, it } from 'vitest';
import { budgetListSchema, budgetSchema, coversJob, periodWindow } from './budget.js';

describe('periodWindow', () => {
  const at = Date.parse('2026-12-03T23:59:59.999Z'); // a Thursday
  it.each([
    ['day', '2026-12-03', '2026-12-04T00:00:00.000Z'],
    ['week', 'w2026-11-30', '2026-12-07T00:00:00.000Z'],
    ['month', '2026-12', '2027-01-01T00:00:00.000Z'],
  ] as const)('puts %s in its UTC period', (period, key, ends) => {
    const window = periodWindow(period, at);
    expect(window.key).toBe(key);
    expect(new Date(window.endsAt ?? 0).toISOString()).toBe(ends);
  });

  it('starts a week on Monday, also for a Sunday and a Monday', () => {
    expect(periodWindow('week', Date.parse('2026-12-06T12:00:00Z')).key).toBe('w2026-11-30');
    expect(periodWindow('week', Date.parse('2026-12-07T00:00:00Z')).key).toBe('w2026-12-07');
  });

  it('rolls a month over the year', () => {
    expect(periodWindow('month', Date.parse('2026-12-31T10:00:00Z')).endsAt).toBe(Date.parse('2027-01-01T00:00:00Z'));
    expect(periodWindow('none', 0)).toEqual({ key: 'all', endsAt: undefined });
  });
});

describe('budgets', () => {
  it('defaults to a hard budget with no period', () => {
    expect(budgetSchema.parse({ id: 'b1', scope: 'tenant', subject: 'acme', limitUsd: 5 })).toEqual({ id: 'b1', scope: 'tenant', subject: 'acme', limitUsd: 5, kind: 'hard', period: 'none' });
  });

  it('names the field and the rule of a bad budget, and a repeated id', () => {
    const result = budgetListSchema.safeParse([
      { id: 'a', scope: 'tenant', subject: '*', limitUsd: 5 },
      { id: 'a', scope: 'planet', subject: 'x', limitUsd: 0 },
    ]);
    expect(result.success).toBe(false);
    const issues = result.error?.issues.map((i) => `${i.path.join('.')}: ${i.message}`) ?? [];
    expect(issues).toEqual(
      expect.arrayContaining([
        '0.subject: * (every account together) goes with scope account',
        '1.scope: must be one of account, batch, pipeline, tenant',
        '1.limitUsd: must be more than 0',
      ]),
    );
  });

  it("takes a tenant's batch id ({tenant}.{name}) as a batch budget's subject, and a . nowhere else", () => {
    expect(budgetSchema.parse({ id: 'b1', scope: 'batch', subject: 'acme.catalogue', limitUsd: 5 }).subject).toBe('acme.catalogue');
    const result = budgetSchema.safeParse({ id: 'b1', scope: 'tenant', subject: 'acme.catalogue', limitUsd: 5 });
    expect(result.error?.issues.map((i) => `${i.path.join('.')}: ${i.message}`)).toEqual(['subject: must match [A-Za-z0-9_-]{1,64} (a tenant)']);
  });

  it('covers a job by its account (or every account), batch, pipeline and tenant', () => {
    const job = { accountId: 'main', batchId: 'b_1', pipeline: 'daily', tenant: 'acme' };
    const budget = (scope: string, subject: string) => budgetSchema.parse({ id: 'x', scope, subject, limitUsd: 1 });
    expect(coversJob(budget('account', '*'), job)).toBe(true);
    expect(coversJob(budget('account', 'main'), job)).toBe(true);
    expect(coversJob(budget('account', 'spare'), job)).toBe(false);
    expect(coversJob(budget('batch', 'b_1'), job)).toBe(true);
    expect(coversJob(budget('pipeline', 'daily'), job)).toBe(true);
    expect(coversJob(budget('tenant', 'acme'), job)).toBe(true);
    expect(coversJob(budget('tenant', 'acme'), { accountId: 'main' })).toBe(false);
  });
});
