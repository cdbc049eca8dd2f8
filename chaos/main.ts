/**
 * `pnpm chaos` (full: 1,000 jobs a scenario) and `pnpm chaos -- --short` (the version `pnpm test`
 * runs): each scenario runs a batch through real processes while injecting one kind of fault,
 * then checks and prints the invariants. The last line of output is one JSON object with the
 * figures of every scenario. Exit code 1 when an invariant does not hold.
 */
import { randomUUID } from 'node:crypto';
import { sleep, waitFor } from '../bench/support.js';
import { checkInvariants, enqueueBatch, newProducer, startChaosEnv, startFleet, waitForBatchEnd, type ChaosEnv, type Fleet, type Invariants } from './harness.js';

const short = process.argv.includes('--short');
const only = process.argv.find((a) => a.startsWith('--only='))?.slice('--only='.length).split(',');
const JOBS = short ? 60 : 1000;
const WORKERS = 3;
const log = (line: string) => process.stderr.write(`${line}\n`);

interface Scenario {
  name: string;
  /** Runs while the batch is in progress; resolves when the fault is over. */
  inject(env: ChaosEnv, fleet: Fleet, done: () => boolean): Promise<void>;
}

const scenarios: Scenario[] = [
  {
    name: 'kill9Workers',
    async inject(_env, fleet, done) {
      for (let i = 0; i < (short ? 3 : 8) && !done(); i++) {
        await sleep(short ? 700 : 2_000);
        fleet.kill9(Math.floor(Math.random() * fleet.workers.length));
        fleet.start();
      }
    },
  },
  {
    name: 'redisRestart',
    async inject(env) {
      await sleep(short ? 800 : 3_000);
      await env.redis.down();
      await sleep(2_000);
      await env.redis.up();
    },
  },
  {
    name: 's3Outage',
    async inject(env) {
      await sleep(short ? 500 : 2_000);
      await env.s3.stop();
      await sleep(short ? 3_000 : 10_000);
      await env.s3.start();
    },
  },
  {
    name: 'upstreamFaults',
    async inject(env, _fleet, done) {
      env.emulator.configure({ faults: { rates: { InternalError: 0.05, ModelUnavailable: 0.02, drop: 0.01, gateway502: 0.01, gateway504: 0.01 } } });
      // Bursts of throttling on top.
      while (!done()) {
        await sleep(short ? 600 : 2_000);
        env.emulator.configure({ faults: { rates: { InternalError: 0.05, ModelUnavailable: 0.02, drop: 0.01, gateway502: 0.01, gateway504: 0.01, Throttling: 0.5 } } });
        await sleep(300);
        env.emulator.configure({ faults: { rates: { InternalError: 0.05, ModelUnavailable: 0.02, drop: 0.01, gateway502: 0.01, gateway504: 0.01 } } });
      }
    },
  },
  {
    name: 'webhookReceiverDown',
    async inject(env) {
      await env.receiver.down();
      await sleep(short ? 4_000 : 60_000);
      await env.receiver.up();
    },
  },
  {
    name: 'sigtermAllWorkers',
    async inject(_env, fleet) {
      await sleep(short ? 800 : 3_000);
      await fleet.stopAll();
      for (let i = 0; i < WORKERS; i++) fleet.start();
    },
  },
];

const env = await startChaosEnv();
const results: Record<string, Invariants & { seconds: number }> = {};
let failedAny = false;
try {
  for (const scenario of scenarios.filter((s) => !only || only.includes(s.name))) {
    const prefix = `c${randomUUID().slice(0, 8)}`;
    env.emulator.resetStats();
    env.emulator.configure({ faults: { rates: {} } });
    env.receiver.received.length = 0;
    const producer = await newProducer(env, prefix);
    const fleet = startFleet(env, prefix, WORKERS);
    const started = Date.now();
    try {
      // Faults start once every worker is up (a worker that cannot reach storage at start exits, by design).
      await waitFor('workers', async () => (await producer.queue.getWorkers()).length >= WORKERS, 60_000, 100);
      log(`${scenario.name}: ${JOBS} jobs, ${WORKERS} workers`);
      const { batchId, jobIds } = await enqueueBatch(env, producer, JOBS);
      let finished = false;
      const fault = scenario.inject(env, fleet, () => finished);
      await waitForBatchEnd(producer, batchId, short ? 120_000 : 600_000).finally(() => (finished = true));
      await fault;
      env.emulator.configure({ faults: { rates: {} } });
      // Up to 90 s: a delivery whose lock was lost in a Redis restart waits for the stalled check (30–60 s).
      const invariants = await checkInvariants(env, fleet, producer, batchId, jobIds, short ? 90_000 : 120_000);
      results[scenario.name] = { ...invariants, seconds: Math.round((Date.now() - started) / 100) / 10 };
      failedAny ||= !invariants.ok;
      log(`  ${invariants.ok ? 'ok' : 'INVARIANT BROKEN'}: ${JSON.stringify(invariants)}`);
    } catch (error) {
      failedAny = true;
      log(`  ERROR: ${(error as Error).message}`);
      results[scenario.name] = { ok: false, error: (error as Error).message } as unknown as Invariants & { seconds: number };
    } finally {
      await fleet.stopAll();
      await producer.close().catch(() => {});
    }
  }
} finally {
  await env.close();
}
process.stdout.write(`${JSON.stringify({ mode: short ? 'short' : 'full', jobsPerScenario: JOBS, scenarios: results })}\n`);
process.exit(failedAny ? 1 : 0);
