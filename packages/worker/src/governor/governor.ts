/**
 * The quota governor: hands out upstream calls at each account's fleet-wide pace, learns the
 * real quota from the upstream's answers, and routes work away from accounts that are throttled,
 * cooling down or disabled.
 *
 * Every upstream call goes through `acquire()` → call → `report()`. The pace lives in Redis
 * (`pace-store.ts`), so all worker processes on all hosts share it; this object only adds a
 * per-process view (latency, hints of when each account is next free) and the periodic log.
 */
import { AppError, groupCommit, type AccountConfig, type Logger } from '@zimage/shared';
import type { Redis } from 'ioredis';
import { applyFeedback, defaultPaceConfig, paceView, reserveEach, type Feedback, type PaceConfig, type Reservation } from './pace.js';
import { createPaceStore } from './pace-store.js';

export interface GovernedAccount extends AccountConfig {
  pace: PaceConfig;
}

export interface Lease {
  account: GovernedAccount;
  /** Time spent waiting for the slot, ms. */
  waitedMs: number;
  /** When the slot came (epoch ms): the job holds a worker slot for the call and what follows. */
  grantedAt: number;
}

export type CallOutcome =
  | { kind: 'ok'; latencyMs: number }
  | { kind: 'throttled'; retryAfterMs?: number | undefined; ramp?: boolean | undefined }
  | { kind: 'timeout' }
  | { kind: 'account-error'; reason: string }
  | { kind: 'error' };

export interface AccountSnapshot {
  id: string;
  region: string;
  rpm: number;
  ceilingRpm: number | null;
  targetRpm: number;
  utilisation: number;
  throttleRatio: number;
  blockedForMs: number;
  disabledReason: string | null;
  /** This process's recent upstream latency (EWMA), ms. */
  latencyMs: number | null;
  /** This process's recent time from slot to job done — call, download, store, event (EWMA), ms. */
  holdMs: number | null;
}

export interface Governor {
  /**
   * Waits for a slot on the best available account; `urgent` (a job with priority) may reserve
   * further ahead than bulk work. Throws UPSTREAM_* when every account is disabled.
   */
  acquire(signal?: AbortSignal, urgent?: boolean): Promise<Lease>;
  report(accountId: string, outcome: CallOutcome): Promise<void>;
  /** The job that held this lease has stored its image: how long that took feeds Little's law. */
  release(lease: Lease): void;
  snapshot(): Promise<AccountSnapshot[]>;
  /** Fleet-wide calls that should be in flight to keep every account at its pace (Little's law). */
  suggestedConcurrency(): Promise<number>;
  /** Re-enables every account (after `zimage resume`). */
  enableAll(): Promise<void>;
  readonly accounts: readonly GovernedAccount[];
}

export interface GovernorOptions {
  redis: Redis;
  prefix: string;
  accounts: readonly AccountConfig[];
  logger: Logger;
  /** Per-account overrides of the pacing constants (tests, bench). */
  pace?: Partial<PaceConfig>;
  now?: () => number;
}

const MAX_IDLE_POLL_MS = 1_000;

export function createGovernor(options: GovernorOptions): Governor {
  const now = options.now ?? Date.now;
  const store = createPaceStore(options.redis, options.prefix, now);
  const accounts: GovernedAccount[] = options.accounts.map((account) => ({
    ...account,
    pace: { ...defaultPaceConfig(account.rpm), ...options.pace },
  }));
  const byId = new Map(accounts.map((a) => [a.id, a]));
  // When each account is next worth asking (a hint; the store decides).
  const nextTry = new Map<string, number>();
  const latency = new Map<string, number>();
  const hold = new Map<string, number>();
  const disabledLocally = new Map<string, string>();

  // One compare-and-set reserves slots for every caller waiting on the account in this process:
  // with each caller doing its own, a process running 16 jobs spent most of its time losing
  // compare-and-sets to itself (acquire took ~30 ms with an instant upstream).
  // A caller cancelled while it waited for the round takes no slot (its job will not call).
  const reserveShared = groupCommit<{ urgent: boolean; signal: AbortSignal | undefined }, Reservation>(async (accountId, callers) => {
    const account = byId.get(accountId);
    if (!account) throw new Error(`unknown account ${accountId}`);
    const live = callers.filter((c) => !c.signal?.aborted);
    const granted = live.length === 0 ? [] : await store.update(account.id, account.pace, (state, time) => {
      const { state: next, reservations } = reserveEach(state, time, account.pace, live.map((c) => c.urgent));
      if (state.disabledReason) disabledLocally.set(account.id, state.disabledReason);
      else disabledLocally.delete(account.id);
      return { state: next, result: reservations };
    });
    const byCaller = new Map(live.map((c, i) => [c, granted[i]]));
    return callers.map((c) => byCaller.get(c) ?? { granted: false, retryInMs: 0 });
  });

  async function acquire(signal?: AbortSignal, urgent = false): Promise<Lease> {
    const started = now();
    for (;;) {
      signal?.throwIfAborted();
      let usable = accounts.filter((a) => !disabledLocally.has(a.id));
      if (usable.length === 0) {
        // Another process may have re-enabled them (`zimage resume`): look before giving up.
        for (const account of accounts) {
          const state = await store.read(account.id, account.pace);
          if (state.disabledReason) disabledLocally.set(account.id, state.disabledReason);
          else disabledLocally.delete(account.id);
        }
        usable = accounts.filter((a) => !disabledLocally.has(a.id));
      }
      if (usable.length === 0) {
        const reasons = accounts.map((a) => `${a.id}: ${disabledLocally.get(a.id)}`).join('; ');
        throw new AppError('UPSTREAM_ACCESS_DENIED', `Every account is disabled (${reasons})`, { details: { allAccountsDisabled: true } });
      }
      // Ask the account that should be free soonest first.
      usable.sort((a, b) => (nextTry.get(a.id) ?? 0) - (nextTry.get(b.id) ?? 0));
      let earliest = Infinity;
      for (const account of usable) {
        const reservation = await reserveShared(account.id, { urgent, signal });
        signal?.throwIfAborted();
        if (reservation.granted) {
          const wait = reservation.at - now();
          if (wait > 0) await sleep(wait, signal);
          nextTry.set(account.id, reservation.at);
          const grantedAt = now();
          return { account, waitedMs: grantedAt - started, grantedAt };
        }
        const at = now() + reservation.retryInMs;
        nextTry.set(account.id, at);
        earliest = Math.min(earliest, at);
      }
      await sleep(Math.min(MAX_IDLE_POLL_MS, Math.max(5, earliest - now())), signal);
    }
  }

  async function report(accountId: string, outcome: CallOutcome): Promise<void> {
    const account = byId.get(accountId);
    if (!account) return;
    let feedback: Feedback | undefined;
    switch (outcome.kind) {
      case 'ok':
        ewma(latency, accountId, outcome.latencyMs);
        return;
      case 'throttled':
        feedback = { kind: 'throttled', retryAfterMs: outcome.retryAfterMs, ramp: outcome.ramp };
        break;
      case 'timeout':
        feedback = { kind: 'timeout' };
        break;
      case 'account-error':
        disabledLocally.set(accountId, outcome.reason);
        feedback = { kind: 'disabled', reason: outcome.reason };
        break;
      case 'error':
        return;
    }
    const applied = feedback;
    await store.update(accountId, account.pace, (state, time) => ({ state: applyFeedback(state, time, applied, account.pace), result: undefined }));
    if (outcome.kind === 'throttled') nextTry.set(accountId, now() + (outcome.retryAfterMs ?? 0));
  }

  function release(lease: Lease): void {
    ewma(hold, lease.account.id, Math.max(0, now() - lease.grantedAt));
  }

  async function snapshot(): Promise<AccountSnapshot[]> {
    const time = now();
    return Promise.all(
      accounts.map(async (account) => {
        const state = await store.read(account.id, account.pace);
        return { id: account.id, region: account.region, ...paceView(state, time, account.pace), latencyMs: round(latency.get(account.id)), holdMs: round(hold.get(account.id)) };
      }),
    );
  }

  async function suggestedConcurrency(): Promise<number> {
    let total = 0;
    for (const view of await snapshot()) {
      if (view.disabledReason) continue;
      // Little's law: in flight = arrival rate × time in the system. The rate is the current pace,
      // not the target: more active jobs than the pace can serve would only sit waiting for a
      // slot, ahead of any higher-priority job still in the queue. The time is how long a job
      // holds its worker slot after its turn comes — the call, and the download, store and event
      // after it (with an instant upstream those are most of it) — not the time it waits for the
      // turn, which would feed back on itself. Twice that leaves room for the pace growing until
      // the next adjustment.
      const seconds = (view.holdMs ?? view.latencyMs ?? 3_000) / 1000;
      total += (view.rpm / 60) * seconds * 2;
    }
    return Math.max(1, Math.ceil(total) + 2);
  }

  async function enableAll(): Promise<void> {
    disabledLocally.clear();
    for (const account of accounts) {
      await store.update(account.id, account.pace, (state, time) => ({ state: applyFeedback(state, time, { kind: 'enabled' }, account.pace), result: undefined }));
    }
  }

  return { acquire, report, release, snapshot, suggestedConcurrency, enableAll, accounts };
}

function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) return reject(signal.reason as Error);
    const timer = setTimeout(() => {
      signal?.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    const onAbort = () => {
      clearTimeout(timer);
      reject(signal?.reason as Error);
    };
    signal?.addEventListener('abort', onAbort, { once: true });
  });
}

function ewma(series: Map<string, number>, accountId: string, sample: number): void {
  const previous = series.get(accountId);
  series.set(accountId, previous === undefined ? sample : previous * 0.8 + sample * 0.2);
}

function round(value: number | undefined): number | null {
  return value === undefined ? null : Math.round(value);
}
