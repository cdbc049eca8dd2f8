/**
 * One naive p-limit baseline of the limiters scenario in a process of its own: its emulator and
 * its client share only this event loop, so twelve of them at once do not slow each other's
 * answers the way twelve emulators and clients in the bench process did (p99 loop delay 0.2–0.6 s
 * on a busy 2-CPU machine, and half the jobs). Started by bench/scenarios/limiters.ts with the
 * run in BENCH_NAIVE (JSON); says `ready` over IPC once loaded, runs on `go`, sends the result.
 */
import { modelSpec, measureLimiterRun, naiveLimitSeconds, type LimiterPlan } from './scenarios/limiter-models.js';
import { runNaiveScript } from './scenarios/naive.js';
import type { LimiterModel } from '@zimage/emulator';
import { watchEventLoop } from './support.js';

interface NaiveChildJob {
  model: LimiterModel;
  plan: LimiterPlan;
  jobs: number;
  concurrency: 4 | 16;
}

const send = (message: object) => new Promise<void>((resolve) => (process.send ? process.send(message, () => resolve()) : resolve()));
const job = JSON.parse(process.env['BENCH_NAIVE'] ?? 'null') as NaiveChildJob | null;
if (!job || !process.send) {
  process.stderr.write('naive-child: run by bench/scenarios/limiters.ts (BENCH_NAIVE and an IPC channel)\n');
  process.exit(2);
}
// Orphaned (the bench died): stop.
process.on('disconnect', () => process.exit(1));
process.once('message', () => {
  void (async () => {
    try {
      const spec = { ...modelSpec(job.model, job.plan), jobs: job.jobs };
      const loop = watchEventLoop();
      const result = await runNaiveScript({ emulator: spec.emulator, jobs: spec.jobs, concurrency: job.concurrency, limitSeconds: naiveLimitSeconds(spec, job.plan) }, (emulator, run) =>
        measureLimiterRun(emulator, job.concurrency === 4 ? 'naive4' : 'naive16', spec, run, loop.stop()),
      );
      await send({ type: 'result', result });
    } catch (error) {
      await send({ type: 'error', error: error instanceof Error ? error.message : String(error) });
    }
    process.exit(0);
  })();
});
await send({ type: 'ready' });
