/**
 * Bulk retry through real workers and the emulator: a batch's failed jobs matching an error code
 * go back to the queue with fresh attempts; the batch stops counting them as failed, runs again
 * and completes a second time under new event ids; a job that fails again is published and
 * counted once more, not dropped as a repeat; a dry run counts by code and changes nothing; a
 * retried job that had paid for its image is stored from its checkpoint, with no new upstream call.
 */
import { describe, expect, it } from 'vitest';
import type { ZimageEvent } from '@zimage/shared';
import { startApi } from './support/api-harness.js';
import { runCli } from './support/run-cli.js';
import { isTerminal, startStack } from './support/stack.js';

const BUDGET_MS = 60_000;

function ofBatch(events: ZimageEvent[], batchId: string): ZimageEvent[] {
  return events.filter((e) => 'batchId' in e.data && e.data.batchId === batchId);
}

describe('bulk retry', () => {
  it('retries the failed jobs of one code; the batch re-counts them and completes again under new event ids', async () => {
    await using stack = await startStack({ worker: false });
    const { batchId, jobs } = await stack.producer.enqueueMany(['A kettle', 'A mug', 'A jug', 'A bowl'].map((prompt) => ({ prompt, size: '512*512' })));
    stack.emulator.failNext('DataInspectionFailed', 'IPInfringementSuspect', 'DataInspectionFailed');
    await stack.startWorker({ concurrency: 1 });
    const first = await stack.waitForBatch(batchId, BUDGET_MS);
    expect(first).toMatchObject({ succeeded: 1, failed: 3, failedByCode: { UPSTREAM_CONTENT_REJECTED: 2, UPSTREAM_IP_INFRINGEMENT: 1 } });

    const dry = await stack.producer.retryJobs({ batchId, code: 'UPSTREAM_CONTENT_REJECTED' }, { dryRun: true });
    expect(dry).toEqual({ matched: 2, retried: 0, finished: 0, byCode: { UPSTREAM_CONTENT_REJECTED: 2 }, dryRun: true });
    expect(await stack.producer.getBatch(batchId)).toMatchObject({ state: 'completed', failed: 3 });

    const retried = await stack.producer.retryJobs({ batchId, code: 'UPSTREAM_CONTENT_REJECTED' });
    expect(retried).toMatchObject({ matched: 2, retried: 2, finished: 0 });
    const second = await stack.waitForBatch(batchId, BUDGET_MS);
    expect(second).toMatchObject({ state: 'completed', total: 4, succeeded: 3, failed: 1, pending: 0, failedByCode: { UPSTREAM_IP_INFRINGEMENT: 1 } });
    expect(stack.emulator.stats().requests).toBe(6);

    const events = ofBatch(await stack.events(), batchId);
    const completions = events.filter((e) => e.type === 'batch.completed');
    expect(completions).toHaveLength(2);
    expect(new Set(completions.map((e) => e.id)).size).toBe(2);
    expect(events.at(-1)?.type).toBe('batch.completed');
    expect(completions[1]?.data).toMatchObject({ succeeded: 3, failed: 1 });
    expect(events.filter((e) => e.type === 'batch.exhausted').at(-1)?.data).toMatchObject({ failedByCode: { UPSTREAM_IP_INFRINGEMENT: 1 } });
    const views = await Promise.all(jobs.map((j) => stack.waitForJob(j.jobId, isTerminal)));
    // Fresh attempts: the retried jobs succeeded on their first.
    expect(views.filter((v) => v.state === 'completed').map((v) => v.result?.attempts)).toEqual([1, 1, 1]);
  });

  it('publishes and counts a retried job that fails again, under a new event id', async () => {
    await using stack = await startStack({ worker: false });
    const { batchId, jobs } = await stack.producer.enqueueMany([{ prompt: 'A vase', size: '512*512' }]);
    stack.emulator.failNext('DataInspectionFailed', 'DataInspectionFailed');
    await stack.startWorker();
    await stack.waitForBatch(batchId, BUDGET_MS);
    expect((await stack.producer.retryJobs({ batchId })).retried).toBe(1);
    const status = await stack.waitForBatch(batchId, BUDGET_MS);
    expect(status).toMatchObject({ failed: 1, succeeded: 0, failedByCode: { UPSTREAM_CONTENT_REJECTED: 1 } });
    const failures = ofBatch(await stack.events(), batchId).filter((e) => e.type === 'job.failed');
    expect(failures.map((e) => e.data.jobId)).toEqual([jobs[0]?.jobId, jobs[0]?.jobId]);
    expect(new Set(failures.map((e) => e.id)).size).toBe(2);
  });

  it('stores a retried job from its checkpoint: the image it paid for is not paid again', async () => {
    // The image host's clock runs 2 h ahead: every 1-hour link is "Request has expired" there, and
    // with no regeneration allowed the job fails with its paid image in its checkpoint.
    await using stack = await startStack({ emulator: { imageTtlMs: 3_600_000, imageHostClockSkewMs: 7_200_000 }, worker: { maxRegenerations: 0 } });
    const { batchId, jobs } = await stack.producer.enqueueMany([{ prompt: 'A clock tower', size: '512*512' }]);
    expect(await stack.waitForBatch(batchId, BUDGET_MS)).toMatchObject({ failed: 1, failedByCode: { IMAGE_URL_EXPIRED: 1 } });
    expect(stack.emulator.stats().imagesGenerated).toBe(1);

    stack.emulator.configure({ imageHostClockSkewMs: 0 });
    // Not matched: another code.
    expect((await stack.producer.retryJobs({ batchId, code: 'UPSTREAM_CONTENT_REJECTED' })).matched).toBe(0);
    expect((await stack.producer.retryJobs({ batchId, code: 'IMAGE_URL_EXPIRED' })).retried).toBe(1);
    expect(await stack.waitForBatch(batchId, BUDGET_MS)).toMatchObject({ succeeded: 1, failed: 0 });
    const view = await stack.waitForJob(jobs[0]?.jobId ?? '', isTerminal);
    expect(view.state).toBe('completed');
    expect(stack.emulator.stats().imagesGenerated).toBe(1);
  });

  it("retries a tenant's failed jobs only", async () => {
    await using stack = await startStack({ worker: false });
    const acme = await stack.producer.enqueue({ prompt: 'An acme kettle', size: '512*512', tenant: 'acme' });
    const globex = await stack.producer.enqueue({ prompt: 'A globex kettle', size: '512*512', tenant: 'globex' });
    stack.emulator.failNext('DataInspectionFailed', 'DataInspectionFailed');
    await stack.startWorker({ concurrency: 1 });
    for (const job of [acme, globex]) await stack.waitForJob(job.jobId, (j) => j.state === 'failed', BUDGET_MS);
    expect(await stack.producer.retryJobs({ tenant: 'acme' })).toEqual({ matched: 1, retried: 1, finished: 0, byCode: { UPSTREAM_CONTENT_REJECTED: 1 }, dryRun: false });
    expect((await stack.waitForJob(acme.jobId, (j) => j.state === 'completed', BUDGET_MS)).state).toBe('completed');
    expect((await stack.producer.getJob(globex.jobId))?.state).toBe('failed');
  });

  it('refuses codes it never retries, and an unknown batch', async () => {
    await using stack = await startStack({ worker: false });
    const { batchId } = await stack.producer.enqueueMany([{ prompt: 'A lamp', size: '512*512' }]);
    await expect(stack.producer.retryJobs({ batchId, code: 'JOB_CANCELLED' })).rejects.toMatchObject({ code: 'REQUEST_INVALID', message: expect.stringContaining('not retried') });
    await expect(stack.producer.retryJobs({ batchId, code: 'lowercase' })).rejects.toMatchObject({ code: 'REQUEST_INVALID' });
    await expect(stack.producer.retryJobs({ batchId: 'no-such-batch' })).rejects.toMatchObject({ code: 'JOB_NOT_FOUND' });
  });

  it('is POST /v1/jobs/bulk {action: retry} and zimage jobs retry --batch, with a dry run by code', async () => {
    await using api = await startApi({ worker: false });
    const { stack } = api;
    const { batchId } = await stack.producer.enqueueMany(['A fork', 'A knife', 'A spoon'].map((prompt) => ({ prompt, size: '512*512' })));
    stack.emulator.failNext('DataInspectionFailed', 'IPInfringementSuspect', 'DataInspectionFailed');
    await stack.startWorker({ concurrency: 1 });
    await stack.waitForBatch(batchId, BUDGET_MS);
    const env = { REDIS_URL: stack.redisUrl, ZIMAGE_PREFIX: stack.prefix };

    const dry = await api.call('POST', '/v1/jobs/bulk', { body: { action: 'retry', batchId, dryRun: true } });
    expect(dry.status, dry.text).toBe(200);
    expect(dry.body).toEqual({ action: 'retry', matched: 3, retried: 0, finished: 0, byCode: { UPSTREAM_CONTENT_REJECTED: 2, UPSTREAM_IP_INFRINGEMENT: 1 }, dryRun: true });
    const cliDry = await runCli(['jobs', 'retry', '--batch', batchId, '--code', 'UPSTREAM_IP_INFRINGEMENT', '--dry-run'], env);
    expect(cliDry.stdout).toBe(`dry run: 1 failed job(s) of batch ${batchId} match (1 UPSTREAM_IP_INFRINGEMENT); nothing was changed\n`);

    const cli = await runCli(['jobs', 'retry', '--batch', batchId, '--code', 'UPSTREAM_IP_INFRINGEMENT', '--json'], env);
    expect(cli.code, cli.stderr).toBe(0);
    expect(JSON.parse(cli.stdout)).toMatchObject({ batchId, matched: 1, retried: 1 });
    const done = await api.call('POST', '/v1/jobs/bulk', { body: { action: 'retry', batchId, code: 'UPSTREAM_CONTENT_REJECTED' } });
    expect(done.body).toMatchObject({ action: 'retry', matched: 2, retried: 2 });
    expect(await stack.waitForBatch(batchId, BUDGET_MS)).toMatchObject({ succeeded: 3, failed: 0, failedByCode: {} });

    const both = await runCli(['jobs', 'retry', 'some-job', '--batch', batchId], env);
    expect(both.code).toBe(2);
    expect(both.stderr).toMatch(/^error USAGE_INVALID: jobs retry: give a parked JOB_ID or one of --batch, --pipeline, --tenant/);
    const stray = await runCli(['jobs', 'retry', 'some-job', '--code', 'UPSTREAM_CONTENT_REJECTED'], env);
    expect(stray.stderr).toMatch(/^error USAGE_INVALID: jobs retry: --code goes with --batch/);
  });
});
