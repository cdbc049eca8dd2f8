/**
 * `pnpm chaos` (full: 1,000 jobs a scenario) and `pnpm chaos -- --short` (60 jobs, shorter faults:
 * the version `pnpm test` runs): each scenario (scenarios.ts) runs a batch through real processes
 * while injecting one kind of fault, then checks and prints the invariants (invariants.ts). The
 * last line of output is one JSON object with the figures of every scenario. Exit code 1 when an
 * invariant does not hold. `--only=name,name` picks scenarios.
 */
import { randomUUID } from 'node:crypto';
import { waitFor } from '../bench/support.js';
import { chaosRequests, enqueueBatch, newProducer, setFaultRates, startChaosEnv, startFleet, waitForBatchEnd } from './harness.js';
import { checkInvariants, type BatchRun } from './invariants.js';
import { watchPauses } from './operator.js';
import { SCENARIOS, type ScenarioOutcome } from './scenarios.js';

const short = process.argv.includes('--short');
const only = process.argv.find((a) => a.startsWith('--only='))?.slice('--only='.length).split(',');
const JOBS = short ? 60 : 1000;
const WORKERS = 3;
/** Longest wait for a batch to end, the fault included (the longest full fault is 5 min). */
const BATCH_TIMEOUT_MS = short ? 150_000 : 900_000;
/**
 * A queue still paused this long after the fault is over is resumed by the harness (and the row
 * fails). Longer in the full run: the fleet's probes back off over a longer outage (after 2 min of
 * 503s the half-open probe came 28 s after the upstream was back).
 */
const PAUSE_PATIENCE_MS = short ? 30_000 : 60_000;
const log = (line: string) => process.stderr.write(`${line}\n`);

type Row = Record<string, unknown> & { ok: boolean; seconds?: number };

const env = await startChaosEnv();
const results: Record<string, Row> = {};
let failedAny = false;
try {
  for (const scenario of SCENARIOS.filter((s) => !only || only.includes(s.name))) {
    const prefix = `c${randomUUID().slice(0, 8)}`;
    env.emulator.resetStats();
    setFaultRates(env, {});
    env.receiver.received.length = 0;
    const producer = await newProducer(env, prefix);
    const fleet = startFleet(env, prefix, WORKERS);
    const watch = watchPauses(env, producer, prefix, PAUSE_PATIENCE_MS);
    const started = Date.now();
    try {
      // Faults start once every worker is up (a worker that cannot reach storage at start exits, by design).
      await waitFor('workers', async () => (await producer.queue.getWorkers()).length >= WORKERS, 60_000, 100);
      log(`${scenario.name}: ${JOBS} jobs, ${WORKERS} workers`);
      const batch: BatchRun = await enqueueBatch(env, producer, chaosRequests(env, JOBS, scenario.idempotent));
      let finished = false;
      const fault = scenario.inject({ env, fleet, producer, short, jobs: JOBS, workers: WORKERS, batch, done: () => finished }).then((outcome) => {
        watch.faultOver();
        return outcome ?? ({} as ScenarioOutcome);
      });
      fault.catch(() => {}); // awaited below; until then a failed fault must not crash the run
      // A batch that does not end is reported with the other invariants rather than as an error.
      const timedOut: string[] = [];
      const ended = (run: BatchRun) => waitForBatchEnd(producer, run.batchId, BATCH_TIMEOUT_MS).catch(() => void timedOut.push(run.batchId));
      await ended(batch).finally(() => (finished = true));
      const outcome = await fault;
      for (const run of outcome.batches ?? []) await ended(run);
      setFaultRates(env, {});
      await watch.stop();
      // Up to 90 s: a delivery whose lock was lost in a Redis restart waits for the stalled check (30–60 s).
      const invariants = await checkInvariants(env, fleet, producer, [batch, ...(outcome.batches ?? [])], { expected: scenario.expected, webhookWaitMs: short ? 90_000 : 120_000, abortedCalls: outcome.abortedCalls ?? 0 });
      const checks = outcome.checks ?? {};
      const row: Row = {
        ...invariants,
        ...outcome.figures,
        ...(Object.keys(checks).length > 0 ? { checks } : {}),
        pauseCodes: watch.codes,
        pausedSeconds: Math.round(watch.pausedMs / 100) / 10,
        unplannedResumes: watch.unplannedResumes,
        batchEndTimedOut: timedOut.length > 0,
        ok: invariants.ok && Object.values(checks).every(Boolean) && watch.unplannedResumes === 0 && timedOut.length === 0,
        seconds: Math.round((Date.now() - started) / 100) / 10,
      };
      results[scenario.name] = row;
      failedAny ||= !row.ok;
      log(`  ${row.ok ? 'ok' : 'INVARIANT BROKEN'}: ${JSON.stringify(row)}`);
    } catch (error) {
      failedAny = true;
      log(`  ERROR: ${(error as Error).message}`);
      results[scenario.name] = { ok: false, error: (error as Error).message, seconds: Math.round((Date.now() - started) / 100) / 10 };
    } finally {
      // A scenario that failed midway must not leave its fault on for the next one.
      setFaultRates(env, {});
      await env.startStorage();
      await watch.stop();
      await fleet.stopAll();
      await producer.close().catch(() => {});
    }
  }
} finally {
  await env.close();
}
process.stdout.write(`${JSON.stringify({ mode: short ? 'short' : 'full', jobsPerScenario: JOBS, scenarios: results })}\n`);
process.exit(failedAny ? 1 : 0);
