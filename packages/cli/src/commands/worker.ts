import { createLogger, createRedisConnection, loadConfig, parseWebhookEndpoints, requireAccount, resolveAccounts, workerEnvSchema } from '@zimage/shared';
import { checkWithin, startHealthFile } from '../health-file.js';
import { storageFromEnv } from '../storage-from-env.js';
import { shutdownTimeoutMs, workerFromEnv } from '../worker-from-env.js';

/**
 * How long past the shutdown deadline the backstop waits before exiting anyway: the close's own
 * forced phase takes about a second (see worker-from-env.ts); this is for whatever it missed.
 */
const BACKSTOP_MARGIN_MS = 3_000;

/**
 * `zimage worker`: runs until SIGINT/SIGTERM, then drains in-flight jobs and exits 0; exits 1 when
 * the drain or a close step did not finish within ZIMAGE_SHUTDOWN_TIMEOUT_MS of the signal (Redis,
 * storage or the upstream unreachable), which is a hard bound.
 */
export async function workerCommand(flags: { json?: boolean } = {}): Promise<number> {
  const env = loadConfig(workerEnvSchema, process.env, requireAccount);
  const accounts = resolveAccounts(env, process.env);
  const endpoints = parseWebhookEndpoints(env.ZIMAGE_WEBHOOK_ENDPOINTS, process.env);
  const logger = createLogger({ level: env.LOG_LEVEL, secrets: [...accounts.map((a) => a.apiKey), env.AWS_SECRET_ACCESS_KEY, ...webhookSecretValues(process.env)], ...(flags.json ? { pretty: false } : {}) });
  // Signals are caught from the start: one that arrives while the worker is still starting is
  // acted on as soon as it is up, instead of killing the process mid-start.
  const timeoutMs = shutdownTimeoutMs(env);
  let stopRequested: { signal: NodeJS.Signals; deadline: number } | undefined;
  let onStop: ((signal: NodeJS.Signals, deadline: number) => void) | undefined;
  let backstop: NodeJS.Timeout | undefined;
  const stop = (signal: NodeJS.Signals) => {
    // A second signal means "now": leave in-flight jobs to be recovered by another worker.
    if (backstop) process.exit(130);
    // The deadline counts from the signal, whatever is still starting or closing. The close bounds
    // each of its steps by it; this timer is for anything it does not (a library call that waits
    // for Redis forever, a start-up still under way). Not unref'd: it must fire even if nothing
    // else keeps the event loop alive, so that the exit code says the drain did not complete.
    const deadline = Date.now() + timeoutMs;
    backstop = setTimeout(() => {
      logger.error({ timeoutMs }, `Shutdown cut short: still not stopped ${BACKSTOP_MARGIN_MS} ms after ZIMAGE_SHUTDOWN_TIMEOUT_MS (${timeoutMs} ms); exiting with whatever is pending abandoned`);
      logger.flush();
      process.exit(process.exitCode ? Number(process.exitCode) : 1);
    }, timeoutMs + BACKSTOP_MARGIN_MS);
    if (onStop) onStop(signal, deadline);
    else stopRequested = { signal, deadline };
  };
  process.on('SIGINT', stop);
  process.on('SIGTERM', stop);
  let worker: Awaited<ReturnType<typeof workerFromEnv>>;
  try {
    worker = await workerFromEnv(env, logger, accounts, endpoints);
  } catch (error) {
    // Stopped while the start failed (e.g. REDIS_UNAVAILABLE): the process ends with that error's
    // exit code as soon as nothing holds it open, and at the backstop at the latest.
    backstop?.unref();
    throw error;
  }
  const health = env.ZIMAGE_HEALTH_FILE ? workerHealth(env.ZIMAGE_HEALTH_FILE, env) : undefined;
  const { timedOut } = await new Promise<{ timedOut: boolean }>((resolve) => {
    onStop = (signal, deadline) => {
      logger.info({ signal, timeoutMs: Math.max(0, deadline - Date.now()) }, `Received ${signal}`);
      void worker.close({ deadline }).then(resolve, (error: unknown) => {
        logger.error({ err: error }, 'Shutdown failed');
        resolve({ timedOut: true });
      });
    };
    if (stopRequested) onStop(stopRequested.signal, stopRequested.deadline);
  });
  health?.stop();
  logger.flush();
  // Exit explicitly: after a timed-out shutdown BullMQ still holds its connections open.
  process.exit(timedOut ? 1 : 0);
}

/** Its own connection and store client: the probe must not queue behind the worker's jobs. */
function workerHealth(path: string, env: Parameters<typeof storageFromEnv>[0] & { REDIS_URL: string }): { stop(): void } {
  const redis = createRedisConnection(env.REDIS_URL, 'producer', { lazyConnect: false, enableOfflineQueue: true });
  const storage = storageFromEnv(env);
  const file = startHealthFile(path, 'worker', async () => ({ redis: await checkWithin(() => redis.ping()), storage: await checkWithin(() => storage.check()) }));
  return {
    stop() {
      file.stop();
      redis.disconnect();
      void storage.close().catch(() => {});
    },
  };
}

/** Literal secret values the logger scrubs: ZIMAGE_WEBHOOK_SECRET and every endpoint's secretEnv. */
function webhookSecretValues(env: NodeJS.ProcessEnv): string[] {
  const names = ['ZIMAGE_WEBHOOK_SECRET'];
  try {
    const listed = JSON.parse(env['ZIMAGE_WEBHOOK_ENDPOINTS'] ?? '[]') as { secretEnv?: unknown }[];
    for (const entry of Array.isArray(listed) ? listed : []) if (typeof entry.secretEnv === 'string') names.push(entry.secretEnv);
  } catch {
    // parseWebhookEndpoints has already reported a malformed list.
  }
  return names.flatMap((name) => (env[name] ?? '').split(/[\s,]+/).filter((s) => s.length >= 8));
}
