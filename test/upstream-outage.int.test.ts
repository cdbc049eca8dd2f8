/**
 * Upstream faults that hit every job alike stop the fleet instead of failing the backlog one job
 * at a time: an outage opens the account's circuit breaker (half-open probes close it again), and
 * a workspace without the model pauses the queue for the operator.
 */
import { circuitBreakerKey } from '@zimage/shared';
import { describe, expect, it } from 'vitest';
import { runCli } from './support/run-cli.js';
import { startStack } from './support/stack.js';
import { until } from './support/until.js';

const THRESHOLD = 5;
const CONCURRENCY = 4;

describe('upstream outages', () => {
  it('opens the circuit breaker on an outage instead of failing the backlog, keeps the jobs attempts, and closes it by itself once a probe succeeds', async () => {
    await using stack = await startStack({
      emulator: { faults: { rates: { ModelUnavailable: 1 } } },
      maxAttempts: 6,
      worker: { concurrency: CONCURRENCY, circuitBreaker: { threshold: THRESHOLD, cooldownMs: 500, maxCooldownMs: 1_000 } },
    });
    const { batchId } = await stack.producer.enqueueMany(Array.from({ length: 30 }, (_, i) => ({ prompt: `A chair ${i}`, size: '512*512' })));
    await until(async () => (await stack.producer.pauseState()).reason?.code === 'UPSTREAM_OUTAGE', 30_000);
    expect(await stack.producer.getBatch(batchId)).toMatchObject({ failed: 0, succeeded: 0 });
    // Probes keep coming while it is down (one at a time, every cool-down), and still nothing fails.
    const before = stack.emulator.stats().requests;
    await until(() => stack.emulator.stats().requests >= before + 3, 30_000);
    expect(await stack.producer.getBatch(batchId)).toMatchObject({ failed: 0, succeeded: 0 });

    stack.emulator.configure({ faults: { rates: { ModelUnavailable: 0 } } }); // the outage ends
    expect(await stack.waitForBatch(batchId, 60_000)).toMatchObject({ succeeded: 30, failed: 0 });
    for (const entry of await stack.producer.batchResults(batchId)) {
      const view = await stack.producer.getJob(entry.jobId);
      expect(view?.result?.attempts).toBeLessThan(6);
    }
    expect((await stack.producer.pauseState()).paused).toBe(false);
  });

  it('does not open the breaker when one job fails again and again: only different jobs failing alike are an outage', async () => {
    await using stack = await startStack({ maxAttempts: 7, worker: { concurrency: 1, circuitBreaker: { threshold: THRESHOLD } } });
    stack.emulator.failNext('ModelUnavailable', 'ModelUnavailable', 'ModelUnavailable', 'ModelUnavailable', 'ModelUnavailable', 'ModelUnavailable');
    const job = await stack.producer.enqueue({ prompt: 'A stool', size: '512*512' });
    const view = await stack.waitForJob(job.jobId, (j) => j.state === 'completed' || j.state === 'failed');
    expect(view.state).toBe('completed');
    expect(view.result?.attempts).toBe(7);
    expect((await stack.producer.pauseState()).paused).toBe(false);
  });

  it('pauses the queue on "Model not exist." instead of failing each job, and finishes after `zimage resume`', async () => {
    await using stack = await startStack({ worker: { concurrency: CONCURRENCY } });
    stack.emulator.configure({ faults: { rates: { ModelNotExist: 1 } } });
    const { batchId } = await stack.producer.enqueueMany(Array.from({ length: 30 }, (_, i) => ({ prompt: `A desk ${i}`, size: '512*512' })));
    await until(async () => (await stack.producer.pauseState()).reason?.code === 'UPSTREAM_MODEL_NOT_FOUND', 30_000);
    expect(stack.emulator.stats().requests).toBeLessThanOrEqual(CONCURRENCY + 1);
    expect(await stack.producer.getBatch(batchId)).toMatchObject({ failed: 0 });

    stack.emulator.configure({ faults: { rates: { ModelNotExist: 0 } } }); // the operator adds the model to the workspace
    const resumed = await runCli(['resume'], { REDIS_URL: stack.redisUrl, ZIMAGE_PREFIX: stack.prefix });
    expect(resumed.code, resumed.stderr).toBe(0);
    expect(await stack.waitForBatch(batchId, 60_000)).toMatchObject({ succeeded: 30, failed: 0 });
  });

  it('does not take cancelled calls for an outage: cancelling a batch of active jobs leaves the breaker closed', async () => {
    await using stack = await startStack({ emulator: { latency: { minMs: 30_000, maxMs: 30_000 } }, worker: { concurrency: 8, circuitBreaker: { threshold: THRESHOLD } } });
    const { batchId } = await stack.producer.enqueueMany(Array.from({ length: 8 }, (_, i) => ({ prompt: `A sofa ${i}`, size: '512*512' })));
    await until(() => stack.emulator.stats().inFlight >= THRESHOLD + 1, 30_000);
    await stack.producer.cancelBatch(batchId);
    expect(await stack.waitForBatch(batchId, 30_000)).toMatchObject({ cancelled: 8 });
    expect((await stack.producer.pauseState()).paused).toBe(false);
    expect(await stack.redis.hget(circuitBreakerKey(stack.prefix, 'test'), 'state')).toBeNull();
  });
});
