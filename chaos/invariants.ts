/**
 * The invariant check after a chaos scenario: what must hold however the faults fell.
 *
 * A scenario may run several batches over the same jobs (a cancelled job re-submitted with its
 * idempotency key is the same job id in a new batch). Each batch is checked on the outcomes its
 * jobs had when it ended (`outcomes`, a snapshot, for a batch whose jobs later ran again); the
 * jobs themselves on their final state.
 */
import { createHash } from 'node:crypto';
import { GetObjectCommand, ListObjectsV2Command } from '@aws-sdk/client-s3';
import type { JobView, Producer } from '@zimage/producer';
import { eventIdFor, eventsStreamKey, GENERATE_QUEUE, type JobRequestInput } from '@zimage/shared';
import { Queue } from 'bullmq';
import { Redis } from 'ioredis';
import { waitFor } from '../bench/support.js';
import { WORKER_CONCURRENCY, type ChaosEnv, type Fleet } from './harness.js';

/** One batch a scenario enqueued. */
export interface BatchRun {
  batchId: string;
  jobIds: string[];
  /** The requests as enqueued (to re-submit them unchanged). */
  requests: JobRequestInput[];
  /** Its jobs' views when the batch ended, when they may have run again since. */
  outcomes?: ReadonlyMap<string, JobView | null>;
}

/**
 * What every job should end as. `allSucceeded`: every job succeeded. `succeededOrCancelled` (a
 * scenario that cancels): each job succeeded or was cancelled, none failed, and some were cancelled.
 */
export type Expectation = 'allSucceeded' | 'succeededOrCancelled';

export interface Invariants {
  jobs: number;
  succeeded: number;
  /** Failed or cancelled (as before `cancelled` was counted on its own). */
  failed: number;
  cancelled: number;
  expected: Expectation;
  asExpected: boolean;
  allTerminal: boolean;
  /** Jobs without a terminal state, or without the terminal event of that state. */
  lost: number;
  stuck: number;
  objectsVerified: number;
  /** Succeeded jobs whose object is missing or has other bytes than the result's sha256. */
  objectMismatches: number;
  /** Stored objects beyond one a succeeded job (probe objects not counted). */
  extraObjects: number;
  /** Objects whose bytes differ from the sha256 of the job claiming them, plus objects no succeeded job claims. */
  conflictingObjects: number;
  /** Jobs that ended failed or cancelled although their checkpoint held a paid image. */
  discardedPaid: number;
  eventsMissing: number;
  eventsDuplicated: number;
  batchCompleted: number;
  batchesIncomplete: number;
  webhooksMissing: number;
  webhooksUnverified: number;
  billed: number;
  /** Billed generations whose client had hung up (a killed worker, an aborted call). */
  billedAfterHangUp: number;
  kills: number;
  doubleBilled: number;
  /** Calls that could be in flight at each SIGKILL (kills × concurrency): the most `doubleBilled` may be. */
  doubleBillBound: number;
  doubleBillRatio: number;
  /** Extra generations beyond what kills can explain (each kill may lose its in-flight calls). */
  unexplainedDoubleBills: number;
  ok: boolean;
}

/** A worker's storage probe (`.zimage-probe…` as the last path segment), not an image. */
export function isProbeKey(key: string): boolean {
  return (key.split('/').at(-1) ?? '').startsWith('.zimage-probe');
}

const TERMINAL = new Set(['completed', 'failed', 'cancelled']);

/**
 * The ids a job's terminal event may have: its stable id, or — for a later run of a re-used job id
 * (re-submitted after a cancel) — the id of that run (job id @ creation time).
 */
function terminalEventIds(view: JobView | null, jobId: string): string[] {
  const type = view?.state === 'completed' ? 'job.succeeded' : 'job.failed';
  const ids = [eventIdFor(type, jobId)];
  if (view?.createdAt) ids.push(eventIdFor(type, `${jobId}@${Date.parse(view.createdAt)}`));
  return ids;
}

function heldPaidImage(view: JobView | null): boolean {
  return (view?.state === 'failed' || view?.state === 'cancelled') && view.payload.checkpoint?.generated !== undefined;
}

export interface CheckOptions {
  expected: Expectation;
  /** How long to wait for the webhooks of the events on the stream. */
  webhookWaitMs: number;
  /** Upstream calls the scenario aborted in flight by cancelling running jobs (each may be billed). */
  abortedCalls?: number;
}

export async function checkInvariants(env: ChaosEnv, fleet: Fleet, producer: Producer, batches: readonly BatchRun[], options: CheckOptions): Promise<Invariants> {
  const redis = new Redis(env.redis.url);
  const queue = new Queue(GENERATE_QUEUE, { connection: redis, prefix: fleet.prefix });
  try {
    const jobIds = [...new Set(batches.flatMap((b) => b.jobIds))];
    const finalViews = new Map(await Promise.all(jobIds.map(async (id) => [id, await producer.getJob(id)] as const)));
    const views = [...finalViews.values()];
    const succeeded = views.filter((v) => v?.state === 'completed');
    const cancelled = views.filter((v) => v?.state === 'cancelled');
    const failed = views.filter((v) => v?.state === 'failed' || v?.state === 'cancelled');
    const counts = await queue.getJobCounts('active', 'waiting', 'delayed', 'prioritized');
    const stuck = Object.values(counts).reduce((a, b) => a + b, 0);

    // A paid image given up: on the final state, and in each earlier batch as it ended.
    let discardedPaid = views.filter(heldPaidImage).length;
    for (const batch of batches) for (const view of batch.outcomes?.values() ?? []) if (heldPaidImage(view)) discardedPaid += 1;

    // Every stored object is where the result says, with the bytes the result's sha256 names.
    let verified = 0;
    let mismatches = 0;
    let wrongBytes = 0;
    const claimed = new Set<string>();
    for (const view of succeeded) {
      const result = view!.result!;
      const key = `${fleet.prefix}/${result.key}`;
      claimed.add(key);
      const object = await env.s3Client.send(new GetObjectCommand({ Bucket: env.s3.bucket, Key: key })).catch(() => undefined);
      const bytes = object?.Body ? await object.Body.transformToByteArray() : undefined;
      const sha256 = bytes ? createHash('sha256').update(bytes).digest('hex') : undefined;
      if (sha256 === result.sha256) verified += 1;
      else mismatches += 1;
      if (sha256 !== undefined && sha256 !== result.sha256) wrongBytes += 1;
    }
    const listed: string[] = [];
    let token: string | undefined;
    do {
      const page = await env.s3Client.send(new ListObjectsV2Command({ Bucket: env.s3.bucket, Prefix: `${fleet.prefix}/`, ContinuationToken: token }));
      listed.push(...(page.Contents ?? []).map((o) => o.Key ?? ''));
      token = page.IsTruncated ? page.NextContinuationToken : undefined;
    } while (token);
    const images = listed.filter((key) => !isProbeKey(key));
    const unclaimed = images.filter((key) => !claimed.has(key)).length;

    // One terminal event per job and outcome on the stream, one batch.completed per batch.
    const entries = await redis.xrange(eventsStreamKey(fleet.prefix), '-', '+');
    const field = (fields: string[], name: string) => fields[fields.indexOf(name) + 1] as string;
    const perId = new Map<string, number>();
    for (const [, fields] of entries) perId.set(field(fields, 'id'), (perId.get(field(fields, 'id')) ?? 0) + 1);
    const terminalEventId = (view: JobView | null, jobId: string): string => {
      const ids = terminalEventIds(view, jobId);
      return ids.find((id) => perId.has(id)) ?? ids[0]!;
    };
    const expectedEvents = new Set<string>();
    for (const batch of batches) for (const id of batch.jobIds) expectedEvents.add(terminalEventId(batch.outcomes?.has(id) ? batch.outcomes.get(id)! : finalViews.get(id)!, id));
    const eventsMissing = [...expectedEvents].filter((id) => !perId.has(id)).length;
    const eventsDuplicated = [...perId.values()].filter((n) => n > 1).length;
    const batchCompleted = entries.filter(([, fields]) => field(fields, 'type') === 'batch.completed').length;
    const lost = jobIds.filter((id) => {
      const view = finalViews.get(id)!;
      return !view || !TERMINAL.has(view.state) || !perId.has(terminalEventId(view, id));
    }).length;
    const statuses = await Promise.all(batches.map((b) => producer.getBatch(b.batchId)));
    const batchesIncomplete = statuses.filter((s) => !s?.completedAt).length;

    // Every event reached the receiver, verified. Only events on the stream are waited for: a
    // missing one will never be delivered, and is already counted above.
    const wanted = [...expectedEvents, ...batches.map((b) => eventIdFor('batch.completed', b.batchId))];
    const delivered = () => new Set(env.receiver.received.filter((d) => d.verifyError === undefined).map((d) => String(d.headers['webhook-id'])));
    await waitFor('webhooks', async () => wanted.every((id) => !perId.has(id) || delivered().has(id)), options.webhookWaitMs, 200).catch(() => {});
    const got = delivered();
    const webhooksMissing = wanted.filter((id) => !got.has(id)).length;
    const webhooksUnverified = env.receiver.received.filter((d) => d.verifyError !== undefined).length;

    const stats = env.emulator.stats();
    const billed = stats.imagesGenerated;
    const doubleBilled = Math.max(0, billed - succeeded.length);
    // Calls that may be billed without the image reaching a worker: those in flight at each
    // SIGKILL, and those of running jobs the scenario cancelled (their requests are aborted).
    const doubleBillBound = fleet.kills * WORKER_CONCURRENCY + (options.abortedCalls ?? 0);
    const asExpected =
      options.expected === 'allSucceeded'
        ? succeeded.length === jobIds.length
        : succeeded.length + cancelled.length === jobIds.length && cancelled.length > 0;
    const invariants = {
      jobs: jobIds.length,
      succeeded: succeeded.length,
      failed: failed.length,
      cancelled: cancelled.length,
      expected: options.expected,
      asExpected,
      allTerminal: succeeded.length + failed.length === jobIds.length,
      lost,
      stuck,
      objectsVerified: verified,
      objectMismatches: mismatches,
      extraObjects: Math.max(0, images.length - succeeded.length),
      conflictingObjects: wrongBytes + unclaimed,
      discardedPaid,
      eventsMissing,
      eventsDuplicated,
      batchCompleted,
      batchesIncomplete,
      webhooksMissing,
      webhooksUnverified,
      billed,
      billedAfterHangUp: stats.clientDisconnects,
      kills: fleet.kills,
      doubleBilled,
      doubleBillBound,
      doubleBillRatio: succeeded.length === 0 ? 0 : Math.round((doubleBilled / succeeded.length) * 10_000) / 10_000,
      unexplainedDoubleBills: Math.max(0, doubleBilled - doubleBillBound),
    };
    const ok =
      asExpected &&
      invariants.allTerminal &&
      lost === 0 &&
      stuck === 0 &&
      mismatches === 0 &&
      invariants.extraObjects === 0 &&
      invariants.conflictingObjects === 0 &&
      discardedPaid === 0 &&
      eventsMissing === 0 &&
      eventsDuplicated === 0 &&
      batchCompleted === batches.length &&
      batchesIncomplete === 0 &&
      webhooksMissing === 0 &&
      webhooksUnverified === 0 &&
      doubleBilled <= doubleBillBound;
    return { ...invariants, ok };
  } finally {
    await queue.close();
    redis.disconnect();
  }
}
