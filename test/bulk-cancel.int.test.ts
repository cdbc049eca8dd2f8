/**
 * Cancelling a batch's jobs by filter (issue 16, bulk operations): `POST /v1/jobs/bulk` and
 * `zimage jobs cancel`, by state and creation time, with a dry run that changes nothing; finished
 * jobs are never matched; bad input names the field.
 */
import { describe, expect, it } from 'vitest';
import { startApi } from './support/api-harness.js';
import { runCli } from './support/run-cli.js';
import { until } from './support/until.js';
import { tickBatchId } from '@zimage/shared';

describe('bulk cancel by filter', () => {
  it('counts on a dry run without changing anything, then cancels only the unfinished jobs created in the window', async () => {
    await using api = await startApi({ worker: false });
    const { producer } = api.stack;
    const early = await producer.enqueueMany([1, 2].map((i) => ({ prompt: `early ${i}`, size: '512*512' })));
    const batchId = early.batchId;
    const lastEarly = Math.max(...(await Promise.all(early.jobs.map(async (j) => Date.parse((await producer.getJob(j.jobId))?.createdAt ?? '0')))));
    await until(() => Date.now() > lastEarly + 1);
    const windowStart = new Date().toISOString();
    const late = [await producer.enqueue({ prompt: 'late 1', size: '512*512', batchId }), await producer.enqueue({ prompt: 'late 2', size: '512*512', batchId }), await producer.enqueue({ prompt: 'late 3', size: '512*512', batchId })];
    await producer.cancelJob(late[2]?.jobId as string); // finished: never matched again

    const dry = await api.call('POST', '/v1/jobs/bulk', { body: { action: 'cancel', batchId, state: 'waiting', createdAfter: windowStart, dryRun: true } });
    expect(dry.status, dry.text).toBe(200);
    expect(dry.body).toEqual({ action: 'cancel', matched: 2, cancelled: 0, cancelling: 0, storing: 0, finished: 0, dryRun: true });
    expect((await producer.getBatch(batchId))?.pending).toBe(4);

    const done = await api.call('POST', '/v1/jobs/bulk', { body: { action: 'cancel', batchId, createdAfter: windowStart } });
    expect(done.body).toEqual({ action: 'cancel', matched: 2, cancelled: 2, cancelling: 0, storing: 0, finished: 0, dryRun: false });
    for (const job of late) expect((await producer.getJob(job.jobId))?.state).toBe('cancelled');
    for (const job of early.jobs) expect((await producer.getJob(job.jobId))?.state).not.toBe('cancelled');
    expect(await producer.getBatch(batchId)).toMatchObject({ cancelled: 3, pending: 2 });

    // The rest from the command line: a dry run first, then for real.
    const env = { REDIS_URL: api.stack.redisUrl, ZIMAGE_PREFIX: api.stack.prefix };
    const cliDry = await runCli(['jobs', 'cancel', '--batch', batchId, '--dry-run'], env);
    expect(cliDry.stdout).toBe(`dry run: 2 unfinished job(s) of batch ${batchId} match; nothing was changed\n`);
    const cli = await runCli(['jobs', 'cancel', '--batch', batchId, '--state', 'waiting', '--json'], env);
    expect(cli.code, cli.stderr).toBe(0);
    expect(JSON.parse(cli.stdout)).toEqual({ batchId, matched: 2, cancelled: 2, cancelling: 0, storing: 0, finished: 0, dryRun: false });
    expect((await producer.getBatch(batchId))?.state).toBe('completed');
  });

  it('names the field of a bad request, and answers 404 for an unknown batch', async () => {
    await using api = await startApi({ worker: false });
    const { batchId } = await api.stack.producer.enqueueMany([{ prompt: 'kept', size: '512*512' }]);
    for (const [body, field] of [
      [{ action: 'archive', batchId }, 'action'],
      [{ action: 'retry', batchId, state: 'waiting' }, 'state'],
      [{ action: 'retry', batchId, code: 'not a code' }, 'code'],
      [{ action: 'cancel', batchId, state: 'completed' }, 'state'],
      [{ action: 'cancel', batchId, createdAfter: 'yesterday' }, 'createdAfter'],
      [{ action: 'cancel' }, 'batchId'],
      [{ action: 'cancel', batchId, colour: 'red' }, 'colour'],
    ] as const) {
      const r = await api.call('POST', '/v1/jobs/bulk', { body });
      expect(r.status, JSON.stringify(body)).toBe(400);
      expect(r.body.error.code).toBe('REQUEST_INVALID');
      expect(r.body.error.issues.map((i: { field: string }) => i.field), JSON.stringify(body)).toContain(field);
    }
    const unknown = await api.call('POST', '/v1/jobs/bulk', { body: { action: 'cancel', batchId: 'b_nosuch' } });
    expect(unknown.status).toBe(404);
    expect((await api.stack.producer.getBatch(batchId))?.pending).toBe(1);
    const badState = await runCli(['jobs', 'cancel', '--batch', batchId, '--state', 'done'], { REDIS_URL: api.stack.redisUrl, ZIMAGE_PREFIX: api.stack.prefix });
    expect(badState.code).toBe(2);
    expect(badState.stderr).toMatch(/^error USAGE_INVALID: --state: must be one of waiting, delayed, active\n/);
  });

  it("cancels a tenant's or a pipeline's unfinished jobs, and nobody else's; the scope is exactly one of batch, pipeline, tenant", async () => {
    await using api = await startApi({ worker: false });
    const { producer } = api.stack;
    const acme = [await producer.enqueue({ prompt: 'acme 1', size: '512*512', tenant: 'acme' }), await producer.enqueue({ prompt: 'acme 2', size: '512*512', tenant: 'acme' })];
    const globex = await producer.enqueue({ prompt: 'globex 1', size: '512*512', tenant: 'globex' });
    const nightly = await producer.enqueueMany([1, 2].map((i) => ({ prompt: `nightly ${i}`, size: '512*512' })), { batchId: tickBatchId('nightly', new Date('2026-12-01T02:00:00Z')) });
    const other = await producer.enqueueMany([{ prompt: 'weekly 1', size: '512*512' }], { batchId: tickBatchId('weekly', new Date('2026-12-01T02:00:00Z')) });

    expect(await producer.cancelJobs({ tenant: 'acme' }, { dryRun: true })).toMatchObject({ matched: 2, cancelled: 0 });
    const byTenant = await api.call('POST', '/v1/jobs/bulk', { body: { action: 'cancel', tenant: 'acme' } });
    expect(byTenant.body).toEqual({ action: 'cancel', matched: 2, cancelled: 2, cancelling: 0, storing: 0, finished: 0, dryRun: false });
    for (const job of acme) expect((await producer.getJob(job.jobId))?.state).toBe('cancelled');
    expect((await producer.getJob(globex.jobId))?.state).not.toBe('cancelled');

    const env = { REDIS_URL: api.stack.redisUrl, ZIMAGE_PREFIX: api.stack.prefix };
    const cli = await runCli(['jobs', 'cancel', '--pipeline', 'nightly', '--json'], env);
    expect(cli.code, cli.stderr).toBe(0);
    expect(JSON.parse(cli.stdout)).toMatchObject({ pipeline: 'nightly', matched: 2, cancelled: 2 });
    expect(await producer.getBatch(nightly.batchId)).toMatchObject({ cancelled: 2, pending: 0 });
    expect(await producer.getBatch(other.batchId)).toMatchObject({ cancelled: 0, pending: 1 });

    const both = await api.call('POST', '/v1/jobs/bulk', { body: { action: 'cancel', tenant: 'acme', pipeline: 'nightly' } });
    expect(both.status).toBe(400);
    expect(both.body.error.message).toContain('batchId, pipeline, tenant: give exactly one of batchId, pipeline, tenant (got pipeline and tenant)');
    const neither = await runCli(['jobs', 'cancel', '--dry-run'], env);
    expect(neither.code).not.toBe(0);
    expect(neither.stderr).toContain('give exactly one of --batch, --pipeline, --tenant');
  });
});
