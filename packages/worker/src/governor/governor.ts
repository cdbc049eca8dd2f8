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
import { randomBytes } from 'node:crypto';
import type { Redis } from 'ioredis';
import { applyFeedback, defaultPaceConfig, paceView, reserveEach, type Feedback, type LeaseInfo, type PaceConfig, type Reservation } from './pace.js';
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
  /** The call as the pace granted it (in flight until reported; what a throttle is read against). */
  info: LeaseInfo;
}

export type CallOutcome =
  | { kind: 'ok'; latencyMs: number }
  /** `ramp`: the code names a ramp guard; `unnamed`: it names no cause (a rate, a cap, anything). */
  | { kind: 'throttled'; retryAfterMs?: number | undefined; ramp?: boolean | undefined; unnamed?: boolean | undefined }
  | { kind: 'timeout' }
  | { kind: 'account-error'; reason: string }
  | { kind: 'error' }
  /** The slot was taken but the call never made (cancelled, past its deadline, breaker open). */
  | { kind: 'not-sent' };

export interface AccountSnapshot {
  id: string;
  region: string;
  rpm: number;
  ceilingRpm: number | null;
  targetRpm: number;
  /** Calls allowed in any trailing 60 s, and calls sent in the last one. */
  budgetRpm: number;
  sentLastMinute: number;
  probing: boolean;
  inFlight: number;
  inFlightCap: number | null;
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
  /** What came of the call made under this lease; every lease is reported once (it is in flight until then). */
  report(lease: Lease, outcome: CallOutcome): Promise<void>;
  /** The job that held this lease has stored its image: how long that took feeds Little's law. */
  release(lease: Lease): void;
  /** Writes the reports still waiting for their account's next round (before shutdown). */
  flush(): Promise<void>;
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

type ReportItem = { kind: 'report'; feedback: Feedback; at: number };
/** What one round of an account's compare-and-set serves: a caller's reservation, a report, or only the deferred reports. */
type RoundItem = { kind: 'reserve'; urgent: boolean; signal: AbortSignal | undefined } | ReportItem | { kind: 'flush' };

/** Reports wait at most this long for a round that carries them. */
const DEFER_MS = 100;

/** Per account, the reports waiting for the next round; `flushSoon` runs a round when none comes within DEFER_MS. */
function createDeferredReports(flushSoon: (accountId: string) => void) {
  const waiting = new Map<string, ReportItem[]>();
  const timers = new Map<string, NodeJS.Timeout>();
  function arm(accountId: string): void {
    if (timers.has(accountId)) return;
    const timer = setTimeout(() => {
      timers.delete(accountId);
      if (waiting.has(accountId)) flushSoon(accountId);
    }, DEFER_MS);
    timer.unref();
    timers.set(accountId, timer);
  }
  return {
    add(accountId: string, item: ReportItem): void {
      const list = waiting.get(accountId) ?? [];
      list.push(item);
      waiting.set(accountId, list);
      arm(accountId);
    },
    take(accountId: string): ReportItem[] {
      const list = waiting.get(accountId) ?? [];
      waiting.delete(accountId);
      return list;
    },
    restore(accountId: string, items: readonly ReportItem[]): void {
      if (items.length === 0) return;
      waiting.set(accountId, [...items, ...(waiting.get(accountId) ?? [])]);
    },
    accounts(): string[] {
      return [...waiting.keys()];
    },
  };
}

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

  // One compare-and-set per account and round serves every caller waiting in this process: the
  // reservations asked for meanwhile, and the reports made since the last round. With each caller
  // doing its own, a process running 16 jobs spent most of its time losing compare-and-sets to
  // itself (acquire took ~30 ms with an instant upstream).
  // A caller cancelled while it waited for the round takes no slot (its job will not call).
  const accountRound = groupCommit<RoundItem, Reservation | undefined>(async (accountId, items) => {
    const account = byId.get(accountId);
    if (!account) throw new Error(`unknown account ${accountId}`);
    const waiting = deferred.take(accountId);
    const reports = [...waiting, ...items.flatMap((item) => (item.kind === 'report' ? [item] : []))];
    const callers = items.flatMap((item) => (item.kind === 'reserve' && !item.signal?.aborted ? [item] : []));
    // Lease ids only need to be unique among the few dozen calls in flight: short keeps the state small.
    const requests = callers.map((c) => ({ urgent: c.urgent, leaseId: randomBytes(6).toString('base64url') }));
    if (reports.length === 0 && requests.length === 0) return items.map(() => undefined);
    let granted: Reservation[];
    try {
      granted = await store.update(account.id, account.pace, (state, time) => {
        const reported = reports.reduce((next, r) => applyFeedback(next, r.at, r.feedback, account.pace), state);
        if (requests.length === 0) return { state: reported, result: [] };
        const { state: next, reservations } = reserveEach(reported, time, account.pace, requests);
        if (reported.disabledReason) disabledLocally.set(account.id, reported.disabledReason);
        else disabledLocally.delete(account.id);
        return { state: next, result: reservations };
      });
    } catch (error) {
      // Deferred reports nobody waits on go back for the next round; the others' callers get the error.
      deferred.restore(accountId, waiting);
      throw error;
    }
    const byCaller = new Map(callers.map((c, i) => [c, granted[i]]));
    return items.map((item) => (item.kind === 'reserve' ? (byCaller.get(item) ?? { granted: false, retryInMs: 0 }) : undefined));
  });
  const deferred = createDeferredReports((accountId) => {
    accountRound(accountId, { kind: 'flush' }).catch((error: unknown) => options.logger.warn({ err: error, accountId }, 'Writing call reports to the pace failed; they wait for the next round'));
  });

  async function reserve(accountId: string, urgent: boolean, signal: AbortSignal | undefined): Promise<Reservation> {
    return (await accountRound(accountId, { kind: 'reserve', urgent, signal })) ?? { granted: false, retryInMs: 0 };
  }

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
        const reservation = await reserve(account.id, urgent, signal);
        signal?.throwIfAborted();
        if (reservation.granted) {
          const lease = { account, waitedMs: 0, grantedAt: 0, info: reservation.lease };
          const wait = reservation.at - now();
          try {
            if (wait > 0) await sleep(wait, signal);
          } catch (error) {
            await report(lease, { kind: 'not-sent' });
            throw error;
          }
          nextTry.set(account.id, reservation.at);
          const grantedAt = now();
          return { ...lease, waitedMs: grantedAt - started, grantedAt };
        }
        const at = now() + reservation.retryInMs;
        nextTry.set(account.id, at);
        earliest = Math.min(earliest, at);
      }
      await sleep(Math.min(MAX_IDLE_POLL_MS, Math.max(5, earliest - now())), signal);
    }
  }

  async function report(lease: Lease, outcome: CallOutcome): Promise<void> {
    const accountId = lease.account.id;
    const info = lease.info;
    let feedback: Feedback;
    switch (outcome.kind) {
      case 'ok':
        ewma(latency, accountId, outcome.latencyMs);
        feedback = { kind: 'ok', lease: info };
        break;
      case 'throttled':
        feedback = { kind: 'throttled', lease: info, retryAfterMs: outcome.retryAfterMs, ramp: outcome.ramp, unnamed: outcome.unnamed };
        break;
      case 'timeout':
        feedback = { kind: 'timeout', lease: info };
        break;
      case 'account-error':
        disabledLocally.set(accountId, outcome.reason);
        feedback = { kind: 'disabled', reason: outcome.reason, lease: info };
        break;
      case 'error':
      case 'not-sent':
        feedback = { kind: 'released', lease: info };
        break;
    }
    // A call that went well (or was never made) changes nothing at once: it only stops being in
    // flight. Its report rides on the account's next round (at most DEFER_MS away) instead of
    // writing on its own: every call is reported, and each write contends with every process.
    // A throttle, a timeout or an account error is written before the caller goes on.
    if (feedback.kind === 'ok' || feedback.kind === 'released') deferred.add(accountId, { kind: 'report', feedback, at: now() });
    else await accountRound(accountId, { kind: 'report', feedback, at: now() });
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

  async function flush(): Promise<void> {
    await Promise.all(deferred.accounts().map((accountId) => accountRound(accountId, { kind: 'flush' })));
  }

  return { acquire, report, release, flush, snapshot, suggestedConcurrency, enableAll, accounts };
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
