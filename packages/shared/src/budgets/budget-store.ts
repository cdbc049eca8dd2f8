/**
 * Budgets in Redis: their definitions (one hash, id → JSON), their usage per period, and the jobs
 * parked on each.
 *
 * Usage of one budget in one period is a hash of micro-dollars: `spent` (billed), `maybe` (calls
 * whose outcome is unknown: a timeout or reset after sending, a worker that died mid-call) and one
 * `r:<jobId>` field per call in flight, reserved before it is sent. A hard budget refuses a
 * reservation that would take spent + maybe + reserved past its limit, so spend can pass it only
 * by what a change of limit leaves in flight. A reservation left by a run that died is found by
 * the job's next run and counted as maybe billed: that call may have been made.
 */
import type { Redis } from 'ioredis';
import { budgetSchema, MICRO_USD, periodWindow, toMicroUsd, type Budget } from './budget.js';

/** Usage hashes outlive their period by this long, so last month's usage can still be read. */
const USAGE_KEPT_MS = 40 * 86_400_000;

const RESERVE = `
local field, price, check_only = ARGV[1], tonumber(ARGV[2]), ARGV[3] == '1'
local n = #KEYS
if not check_only then
  for i = 1, n do
    local left = redis.call('HGET', KEYS[i], field)
    if left then
      redis.call('HDEL', KEYS[i], field)
      redis.call('HINCRBY', KEYS[i], 'maybe', left)
    end
  end
end
for i = 1, n do
  if ARGV[3 + 3 * i - 1] == '1' then
    local used = 0
    local flat = redis.call('HGETALL', KEYS[i])
    for j = 1, #flat, 2 do
      local f = flat[j]
      if f == 'spent' or f == 'maybe' or (string.sub(f, 1, 2) == 'r:' and f ~= field) then used = used + tonumber(flat[j + 1]) end
    end
    if used + price > tonumber(ARGV[3 + 3 * i - 2]) then return i end
  end
end
if check_only then return 0 end
for i = 1, n do
  redis.call('HSET', KEYS[i], field, price)
  local ttl = tonumber(ARGV[3 + 3 * i])
  if ttl > 0 then redis.call('PEXPIRE', KEYS[i], ttl) end
end
return 0
`;

const SETTLE = `
for i = 1, #KEYS do
  local price = redis.call('HGET', KEYS[i], ARGV[1])
  if price then
    redis.call('HDEL', KEYS[i], ARGV[1])
    if ARGV[2] == 'billed' then redis.call('HINCRBY', KEYS[i], 'spent', price)
    elseif ARGV[2] == 'maybe' then redis.call('HINCRBY', KEYS[i], 'maybe', price) end
  end
end
return 0
`;

export interface BudgetUsage {
  periodKey: string;
  /** ISO time the next period starts; undefined for a budget without a period. */
  periodEndsAt: string | undefined;
  spentUsd: number;
  /** Calls whose outcome is unknown (timeout or reset after sending): counted against the limit, reported apart. */
  maybeBilledUsd: number;
  /** Calls in flight, reserved before they were sent. */
  reservedUsd: number;
  inFlight: number;
  /** What is left under the limit, counting all three above; never below 0. */
  remainingUsd: number;
}

/** What a call holds on its budgets from reservation to settlement. */
export interface Reservation {
  jobId: string;
  priceMicroUsd: number;
  keys: string[];
}

/** How a reserved call ended, for its budgets: billed, not billed (released), or not known. */
export type Settlement = 'billed' | 'released' | 'maybe';

export type ReserveOutcome = { kind: 'reserved'; reservation: Reservation } | { kind: 'refused'; budget: Budget };

export class BudgetStore {
  constructor(
    private readonly redis: Redis,
    private readonly prefix: string,
  ) {}

  async list(): Promise<Budget[]> {
    const all = await this.redis.hgetall(this.definitionsKey());
    return Object.values(all)
      .map((raw) => budgetSchema.safeParse(JSON.parse(raw)))
      .filter((parsed) => parsed.success)
      .map((parsed) => parsed.data)
      .sort((a, b) => a.id.localeCompare(b.id));
  }

  async get(id: string): Promise<Budget | undefined> {
    const raw = await this.redis.hget(this.definitionsKey(), id);
    const parsed = raw === null ? undefined : budgetSchema.safeParse(JSON.parse(raw));
    return parsed?.success ? parsed.data : undefined;
  }

  /** Creates or replaces a budget; its usage (by id and period) is kept. */
  async set(budget: Budget): Promise<void> {
    await this.redis.hset(this.definitionsKey(), budget.id, JSON.stringify(budget));
  }

  /** Removes a budget (its usage stays until it expires); wake its parked jobs with `takeParked`. */
  async remove(id: string): Promise<boolean> {
    return (await this.redis.hdel(this.definitionsKey(), id)) === 1;
  }

  async usage(budget: Budget, now: number): Promise<BudgetUsage> {
    const window = periodWindow(budget.period, now);
    const flat = await this.redis.hgetall(this.usageKey(budget.id, window.key));
    let reserved = 0;
    let inFlight = 0;
    for (const [field, value] of Object.entries(flat)) {
      if (!field.startsWith('r:')) continue;
      reserved += Number(value);
      inFlight += 1;
    }
    const spent = Number(flat['spent'] ?? 0);
    const maybe = Number(flat['maybe'] ?? 0);
    return {
      periodKey: window.key,
      periodEndsAt: window.endsAt === undefined ? undefined : new Date(window.endsAt).toISOString(),
      spentUsd: spent / MICRO_USD,
      maybeBilledUsd: maybe / MICRO_USD,
      reservedUsd: reserved / MICRO_USD,
      inFlight,
      remainingUsd: Math.max(0, toMicroUsd(budget.limitUsd) - spent - maybe - reserved) / MICRO_USD,
    };
  }

  /**
   * Reserves `priceUsd` on every budget given (those covering the call), atomically: refused, with
   * nothing reserved, when a hard one would go past its limit. `checkOnly` tells without reserving.
   */
  async reserve(budgets: readonly Budget[], jobId: string, priceUsd: number, now: number, checkOnly = false): Promise<ReserveOutcome> {
    const priceMicroUsd = toMicroUsd(priceUsd);
    const keys: string[] = [];
    const args: string[] = [`r:${jobId}`, String(priceMicroUsd), checkOnly ? '1' : '0'];
    for (const budget of budgets) {
      const window = periodWindow(budget.period, now);
      keys.push(this.usageKey(budget.id, window.key));
      args.push(String(toMicroUsd(budget.limitUsd)), budget.kind === 'hard' ? '1' : '0', String(window.endsAt === undefined ? 0 : window.endsAt - now + USAGE_KEPT_MS));
    }
    if (keys.length === 0) return { kind: 'reserved', reservation: { jobId, priceMicroUsd, keys } };
    const refused = (await this.redis.eval(RESERVE, keys.length, ...keys, ...args)) as number;
    if (refused > 0) return { kind: 'refused', budget: budgets[refused - 1] as Budget };
    return { kind: 'reserved', reservation: { jobId, priceMicroUsd, keys } };
  }

  async settle(reservation: Reservation, settlement: Settlement): Promise<void> {
    if (reservation.keys.length === 0) return;
    await this.redis.eval(SETTLE, reservation.keys.length, ...reservation.keys, `r:${reservation.jobId}`, settlement);
  }

  /** Records a job parked on a budget, to wake it when the budget is raised or removed. */
  async park(budgetId: string, jobId: string): Promise<void> {
    await this.redis.sadd(this.parkedKey(budgetId), jobId);
  }

  /** The jobs parked on a budget, forgotten here: the caller wakes them. */
  async takeParked(budgetId: string): Promise<string[]> {
    const key = this.parkedKey(budgetId);
    const [[, members]] = (await this.redis.multi().smembers(key).del(key).exec()) as [[unknown, string[]], unknown];
    return members;
  }

  async countParked(budgetId: string): Promise<number> {
    return this.redis.scard(this.parkedKey(budgetId));
  }

  private definitionsKey(): string {
    return `${this.prefix}:budgets`;
  }

  private usageKey(id: string, periodKey: string): string {
    return `${this.prefix}:budget-usage:${id}:${periodKey}`;
  }

  private parkedKey(id: string): string {
    return `${this.prefix}:budget-parked:${id}`;
  }
}
