/**
 * The chaos scenarios, in the order they run. Each injects one kind of fault into a batch in
 * progress; short mode (`--short`, inside `pnpm test`) uses the same fault for less time.
 *
 * Storage and upstream outages start once part of the batch has succeeded, so they meet a fleet
 * in full flow (jobs generating, downloading and storing at once).
 */
import type { Producer } from '@zimage/producer';
import { sleep, waitFor } from '../bench/support.js';
import { enqueueBatch, setFaultRates, waitForBatchEnd, waitForSucceeded, type ChaosEnv, type Fleet } from './harness.js';
import type { BatchRun, Expectation } from './invariants.js';
import { resumeAsOperator } from './operator.js';

export interface ScenarioContext {
  env: ChaosEnv;
  fleet: Fleet;
  producer: Producer;
  short: boolean;
  jobs: number;
  workers: number;
  /** The batch enqueued at the start. */
  batch: BatchRun;
  /** True once the first batch has ended. */
  done(): boolean;
}

export interface ScenarioOutcome {
  /** Further batches the scenario enqueued: the run waits for them and checks them with the first. */
  batches?: BatchRun[];
  /** Extra figures for the row. */
  figures?: Record<string, unknown>;
  /** Conditions particular to the scenario; every one must hold for the row to be ok. */
  checks?: Record<string, boolean>;
  /** Upstream calls the scenario aborted in flight (jobs cancelled while running): each may be billed. */
  abortedCalls?: number;
}

export interface Scenario {
  name: string;
  expected: Expectation;
  /** Enqueue the batch with idempotency keys (to re-submit its jobs as the same jobs). */
  idempotent?: boolean;
  /** Runs while the batch is in progress; resolves when the fault is over. */
  // biome-ignore lint/suspicious/noConfusingVoidType: a scenario may return nothing
  inject(ctx: ScenarioContext): Promise<ScenarioOutcome | void>;
}

/** The upstream mix of `upstreamFaults` (throttling bursts come on top). */
const MIX = { InternalError: 0.05, ModelUnavailable: 0.02, drop: 0.01, gateway502: 0.01, gateway504: 0.01 };
const seconds = (ctx: ScenarioContext, full: number, short: number) => (ctx.short ? short : full) * 1000;
/** A fault starts once this share of the batch has succeeded. */
const inFlow = (ctx: ScenarioContext) => waitForSucceeded(ctx.producer, ctx.batch.batchId, Math.ceil(ctx.jobs / 20), 60_000);

export const SCENARIOS: Scenario[] = [
  {
    name: 'kill9Workers',
    expected: 'allSucceeded',
    async inject({ fleet, short, done }) {
      for (let i = 0; i < (short ? 3 : 8) && !done(); i++) {
        await sleep(short ? 700 : 2_000);
        fleet.kill9(Math.floor(Math.random() * fleet.workers.length));
        fleet.start();
      }
    },
  },
  {
    name: 'redisRestart',
    expected: 'allSucceeded',
    async inject({ env, short }) {
      await sleep(short ? 800 : 3_000);
      await env.redis.down();
      await sleep(2_000);
      await env.redis.up();
    },
  },
  {
    name: 's3Outage',
    expected: 'allSucceeded',
    async inject({ env, short }) {
      await sleep(short ? 500 : 2_000);
      await env.stopStorage();
      await sleep(short ? 3_000 : 10_000);
      await env.startStorage();
    },
  },
  {
    name: 'upstreamFaults',
    expected: 'allSucceeded',
    async inject({ env, short, done }) {
      setFaultRates(env, MIX);
      // Bursts of throttling on top.
      while (!done()) {
        await sleep(short ? 600 : 2_000);
        setFaultRates(env, { ...MIX, Throttling: 0.5 });
        await sleep(300);
        setFaultRates(env, MIX);
      }
    },
  },
  {
    name: 'webhookReceiverDown',
    expected: 'allSucceeded',
    async inject({ env, short }) {
      await env.receiver.down();
      await sleep(short ? 4_000 : 60_000);
      await env.receiver.up();
    },
  },
  {
    name: 'sigtermAllWorkers',
    expected: 'allSucceeded',
    async inject({ fleet, short, workers }) {
      await sleep(short ? 800 : 3_000);
      await fleet.stopAll();
      for (let i = 0; i < workers; i++) fleet.start();
    },
  },
  {
    // Longer than any backoff: paid images wait (the fleet pauses rather than piling up paid
    // images) and are stored when S3 is back.
    name: 's3LongOutage',
    expected: 'allSucceeded',
    async inject(ctx) {
      await inFlow(ctx);
      await ctx.env.stopStorage();
      await sleep(seconds(ctx, 300, 15));
      await ctx.env.startStorage();
    },
  },
  {
    // S3 answers, but refuses every request (a bucket policy or rotated credentials): a permanent
    // kind, so the fleet pauses at once. The operator fixes the policy; no `zimage resume`: the
    // fleet's storage probe must notice and resume. (If the queue stays paused 30 s after the fix —
    // 60 s in the full run — the harness resumes it and the row fails on `unplannedResumes`.)
    name: 's3Refused403',
    expected: 'allSucceeded',
    async inject(ctx) {
      await inFlow(ctx);
      await ctx.env.s3Proxy.setMode('refuse403');
      await sleep(seconds(ctx, 120, 10));
      await ctx.env.s3Proxy.setMode('pass');
      return { figures: { s3Refused: ctx.env.s3Proxy.counts.refused } };
    },
  },
  {
    // Every call answers 503 ModelUnavailable: the circuit breaker opens, the queue pauses, and
    // half-open probes resume it when the upstream is back. Jobs keep their attempts.
    name: 'upstream503',
    expected: 'allSucceeded',
    async inject(ctx) {
      await inFlow(ctx);
      setFaultRates(ctx.env, { ModelUnavailable: 1 });
      await sleep(seconds(ctx, 120, 10));
      setFaultRates(ctx.env, {});
      return { figures: { upstream503s: ctx.env.emulator.stats().errorsByCode['ModelUnavailable'] ?? 0 } };
    },
  },
  {
    // Every call answers 400 InvalidParameter "Model not exist." (a withdrawn model, a wrong
    // region): the account is disabled and the queue paused; no job fails. When the model is
    // back, the operator runs `zimage resume`.
    name: 'modelNotExist',
    expected: 'allSucceeded',
    async inject(ctx) {
      await inFlow(ctx);
      setFaultRates(ctx.env, { ModelNotExist: 1 });
      await sleep(seconds(ctx, 60, 10));
      setFaultRates(ctx.env, {});
      const paused = (await ctx.producer.pauseState()).paused;
      await resumeAsOperator(ctx.env, ctx.fleet.prefix);
      return { figures: { modelNotExistAnswers: ctx.env.emulator.stats().errorsByCode['InvalidParameter'] ?? 0, pausedWhenOperatorResumed: paused } };
    },
  },
  {
    // The whole batch is cancelled while S3 is down and some images are paid but not stored:
    // those finish storing and succeed when S3 is back; everything else is cancelled.
    name: 'cancelDuringStorageOutage',
    expected: 'succeededOrCancelled',
    async inject(ctx) {
      const { env, producer, batch } = ctx;
      await inFlow(ctx);
      await env.stopStorage();
      // Billed but not succeeded, with S3 down (and no kills): paid images waiting for storage.
      const paidUnstored = async () => env.emulator.stats().imagesGenerated - ((await producer.getBatch(batch.batchId))?.succeeded ?? 0);
      await waitFor('an image paid but not stored', async () => (await paidUnstored()) > 0, 60_000, 25);
      const paidAtCancel = await paidUnstored();
      const answer = await producer.cancelBatch(batch.batchId);
      await sleep(seconds(ctx, 60, 10));
      await env.startStorage();
      return { figures: { paidUnstoredAtCancel: paidAtCancel, cancelAnswer: answer }, checks: { paidBeforeCancel: paidAtCancel > 0 }, abortedCalls: answer.cancelling };
    },
  },
  {
    // Cancel a batch early, then re-submit its cancelled jobs with the same idempotency keys as a
    // new batch: they are the same job ids, and must run and succeed (not be swallowed as repeats).
    name: 'resubmitCancelled',
    expected: 'allSucceeded',
    idempotent: true,
    async inject(ctx): Promise<ScenarioOutcome> {
      const { env, producer, batch } = ctx;
      await inFlow(ctx);
      const answer = await producer.cancelBatch(batch.batchId);
      await waitForBatchEnd(producer, batch.batchId, seconds(ctx, 300, 60));
      const outcomes = new Map(await Promise.all(batch.jobIds.map(async (id) => [id, await producer.getJob(id)] as const)));
      batch.outcomes = outcomes;
      const again = batch.requests.filter((_, i) => outcomes.get(batch.jobIds[i]!)?.state === 'cancelled');
      const figures = { cancelAnswer: answer, resubmitted: again.length };
      if (again.length === 0) return { figures, checks: { someCancelled: false }, abortedCalls: answer.cancelling };
      const second = await enqueueBatch(env, producer, again);
      // Swallowed as repeats, they would be taken off the new batch's total (and never run again).
      const total = (await producer.getBatch(second.batchId))?.total ?? 0;
      return { batches: [second], figures: { ...figures, resubmitCreated: second.created, resubmitBatchTotal: total }, checks: { someCancelled: true, resubmitCounted: total === again.length }, abortedCalls: answer.cancelling };
    },
  },
];
