/**
 * Fair share between tenants, against real Redis, BullMQ, workers and the emulator: held jobs are
 * admitted in weighted turns (stride scheduling), a tenant arriving late gets its share from its
 * first job without banking turns it did not use, priority orders jobs within a tenant, and
 * through real workers a small tenant finishes while a large backlog of another is still waiting.
 */
import { describe, expect, it } from 'vitest';
import { FAIR_HOLD_DELAY_MS, GENERATE_JOB_NAME, GENERATE_QUEUE, takeTurn, writeFairShareEnabled, writeTenantWeights, type JobPayload, type JobResult } from '@zimage/shared';
import { createTenantAdmission } from '@zimage/worker';
import { createLogger } from '@zimage/shared';
import { Queue, Worker } from 'bullmq';
import { startStack } from './support/stack.js';
import { until } from './support/until.js';

const requests = (tenant: string | undefined, n: number, extra: Record<string, unknown> = {}) =>
  Array.from({ length: n }, (_, i) => ({ prompt: `A ceramic tile ${tenant ?? 'none'} ${i}`, size: '512*512', ...(tenant ? { tenant } : {}), ...extra }));

describe('fair share between tenants', () => {
  it('admits held jobs in turns proportional to weight, a late tenant from its first job on, and by priority within a tenant', async () => {
    await using stack = await startStack({ worker: false });
    await writeFairShareEnabled(stack.redis, stack.prefix, true);
    await writeTenantWeights(stack.redis, stack.prefix, new Map([['acme', 2]]));
    const acme = await stack.producer.enqueueMany(requests('acme', 40));
    const globex = await stack.producer.enqueueMany(requests('globex', 40));
    const none = await stack.producer.enqueueMany(requests(undefined, 10));
    const urgent = await stack.producer.enqueue({ prompt: 'An urgent tile', size: '512*512', tenant: 'acme', priority: 50 });
    const laneOf = new Map<string, string>([
      ...acme.jobs.map((j) => [j.jobId, 'acme'] as const),
      ...globex.jobs.map((j) => [j.jobId, 'globex'] as const),
      ...none.jobs.map((j) => [j.jobId, 'none'] as const),
      [urgent.jobId, 'acme'],
    ]);
    // Held: not in BullMQ's waiting set, but shown as waiting.
    expect((await stack.producer.getJob(urgent.jobId))?.state).toBe('waiting');

    const queue = new Queue<JobPayload, JobResult>(GENERATE_QUEUE, { connection: stack.redis.duplicate(), prefix: stack.prefix });
    let window = 0;
    const admission = createTenantAdmission({ redis: stack.redis, queue, prefix: stack.prefix, logger: createLogger({ level: 'silent', pretty: false }), window: () => window });
    const turns: string[] = [];
    const take = async (n: number) => {
      window = (await queue.getWaitingCount()) + (await queue.getPrioritizedCount()) + n;
      const ids = await admission.round();
      turns.push(...ids.map((id) => laneOf.get(id) ?? '?'));
      return ids;
    };

    // acme (weight 2), globex and the jobs without a tenant (weight 1 each): 2 : 1 : 1.
    const first = await take(40);
    expect(first.find((id) => laneOf.get(id) === 'acme')).toBe(urgent.jobId); // acme's urgent job leads acme's turns
    const count = (lane: string, from = 0) => turns.slice(from).filter((t) => t === lane).length;
    expect(Math.abs(count('acme') - 20)).toBeLessThanOrEqual(1);
    expect(Math.abs(count('globex') - 10)).toBeLessThanOrEqual(1);
    expect(Math.abs(count('none') - 10)).toBeLessThanOrEqual(1);
    expect(await queue.getPrioritizedCount()).toBe(40); // promoted into BullMQ's waiting set
    expect((await stack.producer.getJob(first[1] ?? ''))?.state).toBe('prioritized');

    // The tenant without a tenant ran out: its turns go to the others at once, 2 : 1.
    const second = await take(15);
    expect(second).toHaveLength(15);
    expect(count('none', 40)).toBe(0);
    expect(Math.abs(count('acme', 40) - 10)).toBeLessThanOrEqual(1);

    // initech arrives late and idle until now: it takes turns at once, but only its share (1 of 4),
    // not a run of turns for the time it was not there.
    const initech = await stack.producer.enqueueMany(requests('initech', 10));
    for (const j of initech.jobs) laneOf.set(j.jobId, 'initech');
    const late = await take(8);
    expect(late.slice(0, 2).some((id) => laneOf.get(id) === 'initech')).toBe(true);
    expect(count('initech', 55)).toBeGreaterThanOrEqual(1);
    expect(count('initech', 55)).toBeLessThanOrEqual(3);

    // Everything held is admitted in the end, each job once.
    for (let i = 0; i < 10 && (await take(100)).length > 0; i++);
    expect(new Set(turns).size).toBe(4);
    expect(turns).toHaveLength(laneOf.size);
    expect(await queue.getDelayedCount()).toBe(0);
    await queue.close();
  });

  it('keeps a re-submitted idempotent job where it waits in its lane', async () => {
    await using stack = await startStack({ worker: false });
    await writeFairShareEnabled(stack.redis, stack.prefix, true);
    const lane = `${stack.prefix}:fair:lane:acme`;
    const first = await stack.producer.enqueue({ prompt: 'A lamp', size: '512*512', tenant: 'acme', idempotencyKey: 'lamp-1' });
    await stack.producer.enqueueMany(requests('acme', 3));
    const place = await stack.redis.zscore(lane, first.jobId);
    const again = await stack.producer.enqueue({ prompt: 'A lamp', size: '512*512', tenant: 'acme', idempotencyKey: 'lamp-1' });
    expect(again).toMatchObject({ jobId: first.jobId, created: false });
    expect(await stack.redis.zscore(lane, first.jobId)).toBe(place);
    expect(await stack.redis.zcard(lane)).toBe(4);
  });

  it('lists held jobs as waiting, not delayed, queue-wide as for one job', async () => {
    await using stack = await startStack({ worker: false });
    await writeFairShareEnabled(stack.redis, stack.prefix, true);
    const held = (await stack.producer.enqueueMany(requests('acme', 3))).jobs.map((j) => j.jobId);
    // A job that really waits for a time (what a backoff leaves), beside the held ones.
    const queue = new Queue<JobPayload, JobResult>(GENERATE_QUEUE, { connection: stack.redis.duplicate(), prefix: stack.prefix });
    const later = await queue.add(GENERATE_JOB_NAME, { prompt: 'Later', size: '512*512' } as unknown as JobPayload, { delay: 60_000, jobId: 'later-1' });
    const ids = async (state: 'waiting' | 'delayed') => {
      const seen: string[] = [];
      let cursor: string | undefined;
      do {
        const page = await stack.producer.listJobs({ state, limit: 2, cursor });
        seen.push(...page.jobs.map((j) => j.jobId));
        cursor = page.nextCursor ?? undefined;
      } while (cursor);
      return seen.sort();
    };
    expect(await ids('waiting')).toEqual([...held].sort());
    expect(await ids('delayed')).toEqual([later.id]);
    await queue.close();
  });

  it('recovers jobs a worker took from a lane but died before admitting, and never starts one waiting for its backoff', async () => {
    await using stack = await startStack({ worker: false });
    await writeFairShareEnabled(stack.redis, stack.prefix, true);
    const { jobs } = await stack.producer.enqueueMany(requests('acme', 2));
    const [held, other] = jobs.map((j) => j.jobId);
    const queue = new Queue<JobPayload, JobResult>(GENERATE_QUEUE, { connection: stack.redis.duplicate(), prefix: stack.prefix });
    // What a worker that died right after its admission script leaves: both jobs taken from the
    // lane and marked admitting, neither promoted; one of them has since run and waits for a backoff.
    const lane = `${stack.prefix}:fair:lane:acme`;
    expect(await stack.redis.zpopmin(lane, 2)).toHaveLength(4);
    await stack.redis.zadd(`${stack.prefix}:fair:admitting`, Date.now(), held ?? '', Date.now(), other ?? '');
    await stack.redis.hset(`${stack.prefix}:${GENERATE_QUEUE}:${other}`, 'delay', '5000');
    let clock = Date.now();
    const admission = createTenantAdmission({ redis: stack.redis, queue, prefix: stack.prefix, logger: createLogger({ level: 'silent', pretty: false }), window: () => 10, now: () => clock });
    await admission.round();
    expect(await queue.getJobState(held ?? '')).toBe('delayed'); // still someone else's to finish
    clock += 11_000;
    await admission.round();
    expect(await queue.getJobState(held ?? '')).toBe('prioritized');
    expect(await queue.getJobState(other ?? '')).toBe('delayed');
    expect(await stack.redis.zcard(`${stack.prefix}:fair:admitting`)).toBe(0);
    await queue.close();
  });

  it('puts a job that came back into the queue without its turn (a retry, a wake, a bulk retry) back in its lane while another tenant waits', async () => {
    await using stack = await startStack({ worker: false, rpm: 1200 });
    // acme's jobs are ready in BullMQ, not held: where a backoff, a budget's wake or a bulk retry
    // puts jobs. Of one priority, BullMQ serves them before any admitted later.
    const acme = await stack.producer.enqueueMany(requests('acme', 10));
    expect(await stack.redis.zcard(`${stack.prefix}:${GENERATE_QUEUE}:prioritized`)).toBe(10);
    await writeFairShareEnabled(stack.redis, stack.prefix, true);
    // More than the admission's window (20 at 1,200 a minute), so globex has jobs held while acme's run.
    const globex = await stack.producer.enqueueMany(requests('globex', 30));
    const tenantOf = new Map([...acme.jobs.map((j) => [j.jobId, 'acme'] as const), ...globex.jobs.map((j) => [j.jobId, 'globex'] as const)]);
    await stack.startWorker({ fairShare: true, concurrency: 1, fairShareIntervalMs: 50 });
    await stack.waitForBatch(acme.batchId, 60_000);
    await stack.waitForBatch(globex.batchId, 60_000);

    const succeeded = (await stack.events()).flatMap((e) => (e.type === 'job.succeeded' ? [tenantOf.get(e.data.jobId)] : []));
    expect(succeeded).toHaveLength(40);
    // Served as BullMQ has them, acme's ten would all have run before any of globex's.
    expect(succeeded.slice(0, 10).filter((t) => t === 'globex').length).toBeGreaterThanOrEqual(3);
    // Every turn given was used, and nothing is left held.
    expect(await stack.redis.zcard(`${stack.prefix}:fair:turns`)).toBe(0);
    expect(await stack.redis.zcard(`${stack.prefix}:fair:active`)).toBe(0);
  });

  it("parks a job its budget cannot fit before it would take a turn: a parked tenant's wakes spend none of its turns", async () => {
    await using stack = await startStack({ worker: false, rpm: 1200 });
    await stack.producer.setBudget({ id: 'acme-cap', scope: 'tenant', subject: 'acme', limitUsd: 0.001 });
    // acme's job is ready without a turn (as a woken parked job is); globex has jobs held.
    const { jobId } = await stack.producer.enqueue({ prompt: 'A ceramic tile', size: '512*512', tenant: 'acme' });
    await writeFairShareEnabled(stack.redis, stack.prefix, true);
    await stack.producer.enqueueMany(requests('globex', 30));
    await stack.startWorker({ fairShare: true, concurrency: 1, fairShareIntervalMs: 50 });
    await until(async () => (await stack.producer.getBudget('acme-cap'))?.parkedJobs === 1, 30_000);
    expect((await stack.producer.getJob(jobId))?.state).toBe('delayed'); // parked, not held for a turn
    // It never went through acme's lane: no turn of acme's was given.
    const admitted = await stack.redis.keys(`${stack.prefix}:fair:admitted:*`);
    for (const key of admitted) expect(await stack.redis.hget(key, 'acme')).toBeNull();
    expect(await stack.redis.exists(`${stack.prefix}:fair:lane:acme`)).toBe(0);
  });

  it('holds a job without its turn again only while another tenant has jobs held, and clears its own stale entry when it goes on', async () => {
    await using stack = await startStack({ worker: false });
    await writeFairShareEnabled(stack.redis, stack.prefix, true);
    const lanes = `${stack.prefix}:fair:lane:`;
    const [globexJob] = (await stack.producer.enqueueMany(requests('globex', 1))).jobs;
    const take = (jobId: string) => takeTurn(stack.redis, stack.prefix, { jobId, tenant: 'acme', bullPriority: 101 });
    expect(await take('acme-1')).toBe('held');
    expect(await stack.redis.zscore(`${lanes}acme`, 'acme-1')).not.toBeNull();
    // globex's lane has emptied (its job was admitted) but is still in the schedule until its next turn.
    await stack.redis.zrem(`${lanes}globex`, globexJob?.jobId ?? '');
    // Nobody else waits: acme-1 goes on, and its entry in acme's lane (which would take a turn) is dropped.
    expect(await take('acme-1')).toBe('go');
    expect(await stack.redis.exists(`${lanes}acme`)).toBe(0);
  });

  it('admits a job whose turn comes while a worker is still putting it back in its lane, once it is held: never strands it', async () => {
    await using stack = await startStack({ worker: false });
    const { jobId } = await stack.producer.enqueue({ prompt: 'A ceramic tile', size: '512*512', tenant: 'acme' });
    // A worker holds the job (BullMQ's lock), as when it is about to call upstream.
    const worker = new Worker<JobPayload, JobResult>(GENERATE_QUEUE, null, { connection: stack.redis.duplicate({ maxRetriesPerRequest: null }), prefix: stack.prefix });
    const job = await worker.getNextJob('lock-1');
    expect(job?.id).toBe(jobId);
    await writeFairShareEnabled(stack.redis, stack.prefix, true);
    await stack.producer.enqueueMany(requests('globex', 2));
    // No turn, and globex waits: back in its lane, to be moved to held next.
    expect(await takeTurn(stack.redis, stack.prefix, { jobId, tenant: 'acme', bullPriority: job?.opts.priority ?? 101 })).toBe('held');

    const queue = new Queue<JobPayload, JobResult>(GENERATE_QUEUE, { connection: stack.redis.duplicate(), prefix: stack.prefix });
    let clock = Date.now();
    const admission = createTenantAdmission({ redis: stack.redis, queue, prefix: stack.prefix, logger: createLogger({ level: 'silent', pretty: false }), window: () => 10, now: () => clock });
    // Its turn comes while it is still active: the worker's move lands after the admission took it.
    const admitting = `${stack.prefix}:fair:admitting`;
    const round = admission.round();
    await until(async () => (await stack.redis.zscore(admitting, jobId)) !== null, 10_000, 1);
    // Not a wait for a condition: the gap puts the move after the round has read the job active.
    await new Promise((resolve) => setTimeout(resolve, 60));
    await job?.moveToDelayed(Date.now() + FAIR_HOLD_DELAY_MS, 'lock-1');
    expect(await round).toContain(jobId);
    // Promoted in that round (it waits briefly for the move), or by the next round's recheck on a slow machine.
    if ((await queue.getJobState(jobId)) !== 'prioritized') {
      clock += 11_000;
      await admission.round();
    }
    expect(await queue.getJobState(jobId)).toBe('prioritized');
    expect(await stack.redis.zcard(admitting)).toBe(0);
    await worker.close();
    await queue.close();
  });

  it('lets a small tenant finish at its share while a large backlog of another waits, through real workers', async () => {
    await using stack = await startStack({ worker: false, rpm: 1200, emulator: { latency: { minMs: 20, maxMs: 40 } } });
    // Fair share is a worker setting (ZIMAGE_FAIR_SHARE), written to Redis at start-up.
    await stack.startWorker({ fairShare: true, concurrency: 4, fairShareIntervalMs: 50 });
    const held = await stack.producer.enqueueMany(requests('bulk', 200));
    const small = await stack.producer.enqueueMany(requests('small', 20));
    const tenantOf = new Map([...held.jobs.map((j) => [j.jobId, 'bulk'] as const), ...small.jobs.map((j) => [j.jobId, 'small'] as const)]);
    await stack.waitForBatch(small.batchId, 120_000);

    const succeeded = (await stack.events()).flatMap((e) => (e.type === 'job.succeeded' ? [e.data.jobId] : []));
    const lastSmall = succeeded.findLastIndex((id) => tenantOf.get(id) === 'small');
    const heldBulkBefore = succeeded.slice(0, lastSmall).filter((id) => tenantOf.get(id) === 'bulk').length;
    // Equal weights: by small's last turn bulk had about as many, plus what ran and was admitted
    // before small arrived. First in, first out would have run all 200 bulk jobs first.
    expect(heldBulkBefore).toBeLessThan(100);
    expect(succeeded.filter((id) => tenantOf.get(id) === 'bulk').length).toBeLessThan(200);
    // The backlog then gets every slot: all of it finishes.
    await stack.waitForBatch(held.batchId, 120_000);
    await until(async () => (await stack.redis.zcard(`${stack.prefix}:fair:admitting`)) === 0, 30_000);
  });
});
