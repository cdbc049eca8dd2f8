/**
 * The budgets' check on each upstream call: reserve the call's price on every budget covering the
 * job before it is sent, settle after (billed, released, or maybe billed), and park the job when a
 * hard budget has no room. A parked job goes back to the queue, delayed (no attempt used), until
 * its budget's period rolls over — or sooner when the budget is raised or removed (the producer
 * promotes the jobs parked on it) — and at most an hour, so a change no producer saw is noticed.
 *
 * Before a job waits for an upstream slot, a check without reserving parks it when it cannot fit
 * even at the lowest price: a batch over its budget is parked at once, not at the account's pace.
 */
import {
  BudgetStore,
  coversJob,
  makeEvent,
  pipelineOfBatch,
  publishEvent,
  toAppError,
  type Budget,
  type BudgetUsage,
  type JobPayload,
  type Logger,
  type PublishOptions,
  type Reservation,
  type Settlement,
} from '@zimage/shared';
import type { Redis } from 'ioredis';

/** Budgets are re-read this often: a change through the API takes effect within it. */
const REFRESH_MS = 1_000;
/** A parked job looks again at least this often, whatever its budget's period. */
const MAX_PARK_MS = 3_600_000;
/** Spread over parked jobs waking at a period's start. */
const WAKE_JITTER_MS = 5_000;

export type GateOutcome =
  | { kind: 'open'; reservation: Reservation; budgets: Budget[] }
  | { kind: 'parked'; delayMs: number; why: string };

export interface BudgetGateOptions {
  redis: Redis;
  publish: PublishOptions;
  logger: Logger;
  now?: () => number;
}

export class BudgetGate {
  readonly store: BudgetStore;
  readonly #options: BudgetGateOptions;
  readonly #now: () => number;
  #budgets: Promise<Budget[]> | undefined;
  #loadedAt = Number.NEGATIVE_INFINITY;

  constructor(options: BudgetGateOptions) {
    this.#options = options;
    this.store = new BudgetStore(options.redis, options.publish.prefix);
    this.#now = options.now ?? Date.now;
  }

  /** Without an account yet: parks the job when a hard budget cannot fit it at `lowestPriceUsd`. */
  async precheck(jobId: string, payload: JobPayload, lowestPriceUsd: number): Promise<GateOutcome | undefined> {
    // Budgets of one account are left to `reserve`: the account is not known before the slot.
    const check = async () => {
      const budgets = (await this.#covering(payload, undefined)).filter((b) => b.kind === 'hard');
      return budgets.length === 0 ? undefined : this.store.reserve(budgets, jobId, lowestPriceUsd, this.#now(), true);
    };
    let outcome = await check();
    if (outcome?.kind === 'refused') outcome = await this.#fresh(check);
    return outcome?.kind === 'refused' ? this.#park(outcome.budget, jobId) : undefined;
  }

  /** Reserves the call's price on every budget covering it, or parks the job. */
  async reserve(jobId: string, payload: JobPayload, accountId: string, priceUsd: number): Promise<GateOutcome> {
    let budgets: Budget[] = [];
    const attempt = async () => {
      budgets = await this.#covering(payload, accountId);
      return this.store.reserve(budgets, jobId, priceUsd, this.#now());
    };
    let outcome = await attempt();
    if (outcome.kind === 'refused') outcome = await this.#fresh(attempt);
    if (outcome.kind === 'refused') return this.#park(outcome.budget, jobId);
    return { kind: 'open', reservation: outcome.reservation, budgets };
  }

  /**
   * A refusal is checked again against budgets read now, not up to a second ago: a job woken by a
   * raise (promoted the moment the new limit was written) must not park again on the old one.
   */
  async #fresh<T>(again: () => Promise<T>): Promise<T> {
    this.#budgets = undefined;
    return again();
  }

  /** Settles a reservation; a soft budget reached by it publishes `budget.warning`, once per period. Never throws. */
  async settle(open: Extract<GateOutcome, { kind: 'open' }>, settlement: Settlement): Promise<void> {
    try {
      await this.store.settle(open.reservation, settlement);
      if (settlement === 'released') return;
      for (const budget of open.budgets) {
        if (budget.kind !== 'soft') continue;
        const usage = await this.store.usage(budget, this.#now());
        if (usage.spentUsd + usage.maybeBilledUsd >= budget.limitUsd) await this.#announce('budget.warning', budget, usage);
      }
    } catch (error) {
      // The reservation stays: the job's next run (if any) counts it as maybe billed.
      this.#options.logger.warn({ err: toAppError(error), jobId: open.reservation.jobId }, 'Could not settle a budget reservation');
    }
  }

  async #park(budget: Budget, jobId: string): Promise<GateOutcome> {
    const now = this.#now();
    const usage = await this.store.usage(budget, now);
    const endsAt = usage.periodEndsAt === undefined ? undefined : Date.parse(usage.periodEndsAt);
    await this.store.park(budget.id, jobId);
    await this.#announce('budget.exhausted', budget, usage);
    const untilRollover = endsAt === undefined ? MAX_PARK_MS : Math.max(0, endsAt - now) + Math.floor(Math.random() * WAKE_JITTER_MS);
    return { kind: 'parked', delayMs: Math.min(MAX_PARK_MS, untilRollover), why: `budget ${budget.id} (${budget.scope} ${budget.subject}) is exhausted for ${usage.periodKey}` };
  }

  /** Once per budget, period and limit (the event id says which): raising a budget and reaching it again announces again. */
  async #announce(type: 'budget.exhausted' | 'budget.warning', budget: Budget, usage: BudgetUsage): Promise<void> {
    const state = {
      budgetId: budget.id,
      scope: budget.scope,
      subject: budget.subject,
      kind: budget.kind,
      limitUsd: budget.limitUsd,
      period: budget.period,
      periodKey: usage.periodKey,
      spentUsd: usage.spentUsd,
      maybeBilledUsd: usage.maybeBilledUsd,
      reservedUsd: usage.reservedUsd,
    };
    const subject = `${budget.id}@${usage.periodKey}@${budget.limitUsd}`;
    const event =
      type === 'budget.exhausted'
        ? makeEvent('budget.exhausted', subject, { ...state, ...(usage.periodEndsAt ? { resumesAt: usage.periodEndsAt } : {}) })
        : makeEvent('budget.warning', subject, state);
    if (await publishEvent(this.#options.redis, event, {}, this.#options.publish)) {
      this.#options.logger.warn({ budget: budget.id, periodKey: usage.periodKey, spentUsd: usage.spentUsd, limitUsd: budget.limitUsd }, type === 'budget.exhausted' ? `Budget ${budget.id} exhausted: its jobs are parked` : `Budget ${budget.id} reached its soft limit`);
    }
  }

  async #covering(payload: JobPayload, accountId: string | undefined): Promise<Budget[]> {
    const subject = { accountId: accountId ?? '*', batchId: payload.batchId, pipeline: pipelineOfBatch(payload.batchId), tenant: payload.tenant };
    return (await this.#list()).filter((budget) => (accountId === undefined && budget.scope === 'account' && budget.subject !== '*' ? false : coversJob(budget, subject)));
  }

  #list(): Promise<Budget[]> {
    const now = this.#now();
    if (!this.#budgets || now - this.#loadedAt >= REFRESH_MS) {
      this.#loadedAt = now;
      const loading = this.store.list();
      // A failed read is not kept: the next call reads again.
      loading.catch(() => {
        if (this.#budgets === loading) this.#budgets = undefined;
      });
      this.#budgets = loading;
    }
    return this.#budgets;
  }
}
