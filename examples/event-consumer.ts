/**
 * Prints completion events as they are published, one line each, as a member of a consumer group.
 *
 *   REDIS_URL=redis://localhost:6379 ZIMAGE_PREFIX=zimage \
 *     node --conditions=zimage-source --import tsx examples/event-consumer.ts [group]
 *
 * Start it twice with the same group and the events are shared between the two; with different
 * groups each prints every event. Stop it with Ctrl-C (SIGINT) or SIGTERM: it finishes the event in
 * hand and exits (within BLOCK_MS); anything read but not printed stays pending and is printed
 * first on the next start — which is also why the consumer name is stable, not hostname-pid.
 */
import { hostname } from 'node:os';
import { consumeEvents, createRedisConnection, DEFAULT_PREFIX, waitForRedis, type StreamEvent } from '@zimage/shared';

const BLOCK_MS = 2_000;

const url = process.env['REDIS_URL'] ?? 'redis://127.0.0.1:6379';
const prefix = process.env['ZIMAGE_PREFIX'] ?? DEFAULT_PREFIX;
const group = process.argv[2] ?? 'example';
const consumer = `example-${hostname()}`;

// 'worker' role: no per-command retry limit, so a blocking read waits out a Redis restart.
const redis = createRedisConnection(url, 'worker');
await waitForRedis(redis, url);

const controller = new AbortController();
for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  process.on(signal, () => {
    // A second signal means "now": the un-acked event is redelivered on the next start anyway.
    if (controller.signal.aborted) process.exit(130);
    console.error(`${signal}: stopping (within ${BLOCK_MS} ms)…`);
    controller.abort();
  });
}

function describe({ streamId, event, fields }: StreamEvent): string {
  const parts = [streamId, event.type, event.id];
  if (event.type === 'batch.completed' || event.type === 'batch.exhausted') {
    const d = event.data;
    parts.push(`batch=${d.batchId}`, `total=${d.total}`, `succeeded=${d.succeeded}`, `failed=${d.failed}`, `expired=${d.expired}`, `cancelled=${d.cancelled}`);
  } else if (event.type === 'batch.first_failure') {
    parts.push(`batch=${event.data.batchId}`, `job=${event.data.jobId}`, `error=${event.data.error.code}`);
  } else if (event.type === 'schedule.failed') {
    parts.push(`schedule=${event.data.scheduleId}`, `tick=${event.data.tickAt}`, `error=${event.data.error.code}`);
  } else if (event.type === 'budget.exhausted' || event.type === 'budget.warning') {
    parts.push(`budget=${event.data.budgetId}`, `period=${event.data.periodKey}`, `spent=${event.data.spentUsd}/${event.data.limitUsd}`);
  } else {
    parts.push(`job=${event.data.jobId}`);
    if (event.data.batchId) parts.push(`batch=${event.data.batchId}`);
    if (event.type === 'job.succeeded') parts.push(`key=${event.data.result.key}`);
    if (event.type === 'job.failed') parts.push(`error=${event.data.error.code}`);
  }
  if (fields['webhook']) parts.push(`webhook=${webhookHost(fields['webhook'])}`);
  return parts.join(' ');
}

/** The entry's webhook field holds a reference (`{ endpointId, host, events? }`), never the URL. */
function webhookHost(raw: string): string {
  try {
    return (JSON.parse(raw) as { host: string }).host;
  } catch {
    return '(unreadable)';
  }
}

console.error(`consuming ${prefix}:events as ${group}/${consumer} (Ctrl-C to stop)`);
await consumeEvents(
  {
    redis,
    prefix,
    group,
    consumer,
    blockMs: BLOCK_MS,
    signal: controller.signal,
    onDeadLetter: ({ streamId, error, deliveries }) => {
      console.error(`dead letter ${streamId} after ${deliveries} deliveries: ${error instanceof Error ? error.message : String(error)}`);
    },
  },
  // Resolving acks the event; throwing would leave it pending to be retried.
  async (event) => {
    console.log(describe(event));
  },
);
await redis.quit();
