/**
 * The operator's view of the quota (`GET /v1/quota`, the `/quota` page, `zimage quota`): per
 * account the governor's pace, ceiling and recent throttles; fair share's lanes and the share each
 * tenant gets; every budget with its usage. Read from Redis, where the whole fleet writes it.
 */
import { AppError, readFairShare, readGovernorSnapshots, tenantIdSchema, tenantWeightSchema, writeTenantWeights, type FairShareStatus, type GovernorSnapshot } from '@zimage/shared';
import { listBudgets, type BudgetView } from './budgets.js';
import type { ProducerContext } from './producer-context.js';

export interface QuotaOverview {
  /** Accounts a running worker reported in the last minute. */
  accounts: GovernorSnapshot[];
  fairShare: FairShareStatus;
  budgets: BudgetView[];
}

export async function readQuota(context: ProducerContext, now = Date.now()): Promise<QuotaOverview> {
  const [accounts, fairShare, budgets] = await Promise.all([
    readGovernorSnapshots(context.connection, context.prefix, now),
    readFairShare(context.connection, context.prefix, now),
    listBudgets(context, now),
  ]);
  return { accounts, fairShare, budgets };
}

/** Sets a tenant's fair-share weight (1–1000; 1 is the default). Throws REQUEST_INVALID naming the field. */
export async function setTenantWeight(context: ProducerContext, tenant: string, weight: number): Promise<{ tenant: string; weight: number }> {
  const id = tenantIdSchema.safeParse(tenant);
  if (!id.success) throw invalid('tenant', id.error.issues[0]?.message);
  const value = tenantWeightSchema.safeParse(weight);
  if (!value.success) throw invalid('weight', value.error.issues[0]?.message);
  await writeTenantWeights(context.connection, context.prefix, new Map([[id.data, value.data]]));
  return { tenant: id.data, weight: value.data };
}

function invalid(field: string, message = 'is invalid'): AppError {
  return new AppError('REQUEST_INVALID', `${field}: ${message}`, { details: { issues: [{ field, message }] } });
}
