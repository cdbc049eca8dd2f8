/**
 * `zimage budgets list | set | usage | remove`: budgets and their usage in the current period
 * (docs/spend-control.md), as `GET/PUT/DELETE /v1/budgets` manage them. Setting or removing a
 * budget wakes the jobs parked on it.
 */
import type { BudgetView, Producer } from '@zimage/producer';
import { AppError, loadConfig, producerEnvSchema, type BudgetInput } from '@zimage/shared';
import { producerFromEnv } from '../producer-from-env.js';

async function withProducer(run: (producer: Producer) => Promise<number>): Promise<number> {
  const producer = await producerFromEnv(loadConfig(producerEnvSchema, process.env));
  try {
    return await run(producer);
  } finally {
    await producer.close();
  }
}

const usd = (n: number) => `$${n.toFixed(n < 1 ? 3 : 2)}`;

function line(b: BudgetView): string {
  const u = b.usage;
  const parts = [`spent ${usd(u.spentUsd)}`, `maybe billed ${usd(u.maybeBilledUsd)}`, `in flight ${usd(u.reservedUsd)} (${u.inFlight})`, `left ${usd(u.remainingUsd)}`];
  return `${b.id}  ${b.kind} ${usd(b.limitUsd)} ${b.period === 'none' ? 'in all' : `a ${b.period} (${u.periodKey})`}  ${b.scope} ${b.subject}\n  ${parts.join(', ')}${b.parkedJobs > 0 ? `; ${b.parkedJobs} jobs parked` : ''}`;
}

export async function budgetsListCommand(flags: { json?: boolean }): Promise<number> {
  return withProducer(async (producer) => {
    const budgets = await producer.listBudgets();
    if (flags.json) process.stdout.write(`${JSON.stringify({ budgets })}\n`);
    else process.stdout.write(budgets.length === 0 ? 'no budgets\n' : `${budgets.map(line).join('\n')}\n`);
    return 0;
  });
}

export async function budgetsUsageCommand(id: string, flags: { json?: boolean }): Promise<number> {
  return withProducer(async (producer) => {
    const budget = await producer.getBudget(id);
    if (!budget) throw new AppError('BUDGET_NOT_FOUND', `no budget ${id}`);
    if (flags.json) process.stdout.write(`${JSON.stringify(budget)}\n`);
    else process.stdout.write(`${line(budget)}${budget.usage.periodEndsAt ? `\n  period ends ${budget.usage.periodEndsAt}` : ''}\n`);
    return 0;
  });
}

export interface BudgetSetFlags {
  scope: string;
  subject: string;
  limit: string;
  kind?: string;
  period?: string;
  json?: boolean;
}

export async function budgetsSetCommand(id: string, flags: BudgetSetFlags): Promise<number> {
  if (!/^\d+(\.\d+)?$/.test(flags.limit.trim())) throw new AppError('REQUEST_INVALID', `--limit must be a number of US$, e.g. 25 or 2.50 (got "${flags.limit}")`);
  const input = { id, scope: flags.scope, subject: flags.subject, limitUsd: Number(flags.limit), ...(flags.kind ? { kind: flags.kind } : {}), ...(flags.period ? { period: flags.period } : {}) };
  return withProducer(async (producer) => {
    const set = await producer.setBudget(input as BudgetInput);
    if (flags.json) process.stdout.write(`${JSON.stringify(set)}\n`);
    else process.stdout.write(`${line(set)}${set.woken > 0 ? `\n  woke ${set.woken} parked jobs` : ''}\n`);
    return 0;
  });
}

export async function budgetsRemoveCommand(id: string, flags: { json?: boolean }): Promise<number> {
  return withProducer(async (producer) => {
    const { woken } = await producer.removeBudget(id);
    if (flags.json) process.stdout.write(`${JSON.stringify({ id, removed: true, woken })}\n`);
    else process.stdout.write(`removed budget ${id}${woken > 0 ? `; woke ${woken} parked jobs` : ''}\n`);
    return 0;
  });
}

/** `zimage quota`: per account the pace and throttles, fair share's lanes, budgets (GET /v1/quota). */
export async function quotaCommand(flags: { json?: boolean }): Promise<number> {
  return withProducer(async (producer) => {
    const quota = await producer.quota();
    if (flags.json) {
      process.stdout.write(`${JSON.stringify(quota)}\n`);
      return 0;
    }
    const out: string[] = ['accounts:'];
    if (quota.accounts.length === 0) out.push('  none reported by a running worker in the last minute');
    for (const a of quota.accounts) {
      out.push(`  ${a.id} (${a.region}): pace ${a.rpm.toFixed(0)} rpm, ceiling ${a.ceilingRpm === null ? '—' : a.ceilingRpm.toFixed(0)}, sent ${a.sentLastMinute} last minute, throttled ${(a.throttleRatio * 100).toFixed(1)}%${a.disabledReason ? `, DISABLED: ${a.disabledReason}` : ''}`);
    }
    out.push(`fair share: ${quota.fairShare.enabled ? 'on' : 'off'}`);
    for (const l of quota.fairShare.lanes) {
      out.push(`  ${l.tenant ?? '(no tenant)'}: weight ${l.weight}, ${l.waiting} waiting, target ${(l.targetShare * 100).toFixed(0)}%, got ${(l.share * 100).toFixed(0)}% of ${l.admittedRecently} admitted in 2 min`);
    }
    out.push('budgets:');
    if (quota.budgets.length === 0) out.push('  none');
    for (const b of quota.budgets) out.push(`  ${line(b).replace('\n', '\n  ')}`);
    process.stdout.write(`${out.join('\n')}\n`);
    return 0;
  });
}
