/**
 * `zimage webhooks list | log EVENT_ID | replay EVENT_ID | replay --endpoint ID --since TIME |
 * enable ENDPOINT | secret`: the operator's view of webhook deliveries.
 */
import {
  AppError,
  baseEnvSchema,
  createRedisConnection,
  endpointState,
  enableEndpoint,
  generateWebhookSecret,
  loadConfig,
  waitForRedis,
  WEBHOOK_QUEUE,
  type DeliveryJobData,
  urlHost,
} from '@zimage/shared';
import { deliveryLog, replayEndpoint, replayEvent, type ReplayOutcome } from '@zimage/worker';
import { Queue } from 'bullmq';
import type { Redis } from 'ioredis';

async function withRedis<T>(fn: (redis: Redis, queue: Queue<DeliveryJobData>, prefix: string) => Promise<T>): Promise<T> {
  const env = loadConfig(baseEnvSchema, process.env);
  const redis = createRedisConnection(env.REDIS_URL, 'producer');
  try {
    await waitForRedis(redis, env.REDIS_URL);
    const queue = new Queue<DeliveryJobData>(WEBHOOK_QUEUE, { connection: redis, prefix: env.ZIMAGE_PREFIX });
    try {
      return await fn(redis, queue, env.ZIMAGE_PREFIX);
    } finally {
      await queue.close();
    }
  } finally {
    redis.disconnect();
  }
}

export async function webhooksLogCommand(eventId: string, flags: { json?: boolean }): Promise<number> {
  return withRedis(async (redis, _queue, prefix) => {
    const attempts = await deliveryLog(redis, prefix, eventId);
    if (flags.json) {
      process.stdout.write(`${JSON.stringify(attempts)}\n`);
      return 0;
    }
    if (attempts.length === 0) process.stdout.write(`${eventId}: deliveries queued, no attempt yet\n`);
    for (const a of attempts) {
      const status = a.status === undefined ? '---' : String(a.status);
      const latency = a.latencyMs === undefined ? '' : ` ${a.latencyMs} ms`;
      const next = a.nextAttemptAt ? ` · next ${a.nextAttemptAt}` : '';
      process.stdout.write(`${a.at}  ${a.endpointId} (${a.host})  #${a.attempt}  ${status}${latency}  ${a.outcome}${a.error ? ` · ${a.error}` : ''}${next}\n`);
    }
    return 0;
  });
}

export async function webhooksReplayCommand(eventId: string | undefined, flags: { endpoint?: string; since?: string; force?: boolean; json?: boolean }): Promise<number> {
  if (!eventId && !(flags.endpoint && flags.since)) {
    throw new AppError('REQUEST_INVALID', 'give an EVENT_ID, or --endpoint ID with --since TIME to replay an endpoint');
  }
  let since: Date | undefined;
  if (!eventId) {
    since = new Date(flags.since as string);
    if (Number.isNaN(since.getTime())) throw new AppError('REQUEST_INVALID', `--since must be an ISO 8601 time, e.g. 2026-11-23T08:00:00Z (got "${flags.since}")`);
  }
  return withRedis(async (redis, queue, prefix) => {
    const outcome: ReplayOutcome = eventId
      ? await replayEvent(redis, queue, prefix, eventId, { ...(flags.endpoint ? { endpointId: flags.endpoint } : {}), force: flags.force ?? false })
      : await replayEndpoint(queue, flags.endpoint as string, since as Date);
    if (flags.json) {
      process.stdout.write(`${JSON.stringify(outcome)}\n`);
      return 0;
    }
    process.stdout.write(`Replayed ${outcome.replayed.length} deliver${outcome.replayed.length === 1 ? 'y' : 'ies'}\n`);
    for (const id of outcome.replayed) process.stdout.write(`  ${id}\n`);
    for (const s of outcome.skipped) process.stdout.write(`  skipped ${s.jobId} (${s.state}${s.state === 'completed' ? '; --force sends it again' : ''})\n`);
    const endpoints = new Set(outcome.replayed.map((id) => id.slice(id.indexOf('.') + 1)));
    for (const endpointId of endpoints) {
      const state = await endpointState(redis, prefix, endpointId);
      if (state) process.stdout.write(`note: endpoint ${endpointId} is disabled (${state.reason}); run \`zimage webhooks enable ${endpointId}\` or the replay dead-letters again\n`);
    }
    return 0;
  });
}

export async function webhooksEnableCommand(endpointId: string, flags: { json?: boolean } = {}): Promise<number> {
  return withRedis(async (redis, _queue, prefix) => {
    const was = await enableEndpoint(redis, prefix, endpointId);
    if (flags.json) process.stdout.write(`${JSON.stringify({ endpointId, enabled: was })}\n`);
    else process.stdout.write(was ? `Endpoint ${endpointId} enabled\n` : `Endpoint ${endpointId} was not disabled\n`);
    return 0;
  });
}

/** Registered endpoints (from ZIMAGE_WEBHOOK_ENDPOINTS; secrets not needed) and their state. */
export async function webhooksListCommand(flags: { json?: boolean }): Promise<number> {
  let listed: { id?: unknown; url?: unknown; events?: unknown }[] = [];
  try {
    const raw = process.env['ZIMAGE_WEBHOOK_ENDPOINTS']?.trim();
    listed = raw ? (JSON.parse(raw) as typeof listed) : [];
  } catch {
    throw new AppError('CONFIG_INVALID', 'Invalid configuration:\n  - ZIMAGE_WEBHOOK_ENDPOINTS: must be a JSON array of endpoints');
  }
  return withRedis(async (redis, queue, prefix) => {
    const failed = await queue.getFailed(0, 9_999);
    const rows = [];
    for (const entry of Array.isArray(listed) ? listed : []) {
      const id = String(entry.id);
      const state = await endpointState(redis, prefix, id);
      rows.push({
        id,
        host: urlHost(String(entry.url)) ?? '(invalid url)',
        events: Array.isArray(entry.events) ? entry.events : 'all',
        disabled: state ?? null,
        deadLettered: failed.filter((job) => job?.data.endpointId === id).length,
      });
    }
    const perJob = failed.filter((job) => job?.data.endpointId.startsWith('job-')).length;
    if (flags.json) {
      process.stdout.write(`${JSON.stringify({ endpoints: rows, perJobDeadLettered: perJob })}\n`);
      return 0;
    }
    if (rows.length === 0) process.stdout.write('No registered endpoints (ZIMAGE_WEBHOOK_ENDPOINTS)\n');
    for (const r of rows) {
      process.stdout.write(`${r.id}  ${r.host}  events: ${Array.isArray(r.events) ? r.events.join(',') : r.events}  ${r.disabled ? `DISABLED since ${r.disabled.disabledAt} (${r.disabled.reason})` : 'enabled'}  dead letters: ${r.deadLettered}\n`);
    }
    process.stdout.write(`Per-job webhooks: ${perJob} dead letter(s)\n`);
    return 0;
  });
}

export async function webhooksSecretCommand(flags: { json?: boolean } = {}): Promise<number> {
  const secret = generateWebhookSecret();
  process.stdout.write(flags.json ? `${JSON.stringify({ secret })}\n` : `${secret}\n`);
  return 0;
}

