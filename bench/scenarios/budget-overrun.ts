/**
 * Scenario 8 — worst budget overrun. A hard budget on every account is set, then many more jobs
 * than it fits are run by two worker processes × 32 against an emulator that takes 200–400 ms an
 * image (so dozens of calls are in flight at the limit) and drops 5% of the connections after
 * billing (calls whose outcome zimage cannot know: counted as maybe billed). Measured when every
 * job has finished or is parked: what the emulator billed, and what zimage counted, against the
 * limit. The overrun is how far the emulator's billing passed the limit (the bound: calls already
 * in flight when the limit was reached; reservations are taken before each call, so expected 0).
 */
import { round, sleep } from '../support.js';
import { startFleet } from '../fleet.js';

const PRICE_USD = 0.015;

export async function runBudgetOverrunScenario(options: { redisUrl: string; jobs: number; fits: number }) {
  const fleet = await startFleet({
    redisUrl: options.redisUrl,
    emulator: { latency: { minMs: 200, maxMs: 400, extendExtraMinMs: 0, extendExtraMaxMs: 0 }, quota: { rpm: Infinity, rps: Infinity }, images: 'template', faults: { rates: { dropAfterBilling: 0.05 } } },
    workers: 2,
    rpm: 100_000,
    concurrency: 32,
  });
  const limitUsd = round(options.fits * PRICE_USD, 6);
  try {
    await fleet.producer.setBudget({ id: 'bench', scope: 'account', subject: '*', limitUsd });
    const { batchId } = await fleet.producer.enqueueMany(Array.from({ length: options.jobs }, (_, i) => ({ prompt: `Catalogue item ${i}`, size: '512*512' })));
    const deadline = Date.now() + 300_000;
    let peakInFlight = 0;
    let stable = 0;
    for (;;) {
      const budget = await fleet.producer.getBudget('bench');
      const batch = await fleet.producer.getBatch(batchId);
      peakInFlight = Math.max(peakInFlight, budget?.usage.inFlight ?? 0);
      const finished = (batch?.succeeded ?? 0) + (batch?.failed ?? 0) + (batch?.expired ?? 0);
      // Settled: nothing in flight, every job finished or parked, twice in a row a second apart.
      stable = budget && budget.usage.inFlight === 0 && finished + budget.parkedJobs >= options.jobs ? stable + 1 : 0;
      if (stable >= 2) break;
      if (Date.now() > deadline) throw new Error('the budget run did not settle in 5 minutes');
      await sleep(1000);
    }
    const budget = await fleet.producer.getBudget('bench');
    const stats = fleet.emulator.stats();
    const counted = (budget?.usage.spentUsd ?? 0) + (budget?.usage.maybeBilledUsd ?? 0);
    return {
      jobs: options.jobs,
      limitUsd,
      imagesThatFit: options.fits,
      upstreamCalls: stats.requests,
      billedUsd: round(stats.billedUsd, 6),
      spentUsd: round(budget?.usage.spentUsd ?? 0, 6),
      maybeBilledUsd: round(budget?.usage.maybeBilledUsd ?? 0, 6),
      parkedJobs: budget?.parkedJobs ?? 0,
      peakReservedCalls: peakInFlight,
      worstOverrunUsd: round(Math.max(0, stats.billedUsd - limitUsd, counted - limitUsd), 6),
      goal: { overrunUsd: 0, met: stats.billedUsd <= limitUsd + 1e-9 },
    };
  } finally {
    await fleet.close();
  }
}
