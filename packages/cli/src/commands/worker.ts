import { createLogger, loadConfig, parseWebhookEndpoints, requireAccount, resolveAccounts, workerEnvSchema } from '@zimage/shared';
import { workerFromEnv } from '../worker-from-env.js';

/** `zimage worker`: runs until SIGINT/SIGTERM, then drains in-flight jobs and exits 0. */
export async function workerCommand(): Promise<number> {
  const env = loadConfig(workerEnvSchema, process.env, requireAccount);
  const accounts = resolveAccounts(env, process.env);
  const endpoints = parseWebhookEndpoints(env.ZIMAGE_WEBHOOK_ENDPOINTS, process.env);
  const logger = createLogger({ level: env.LOG_LEVEL, secrets: [...accounts.map((a) => a.apiKey), env.AWS_SECRET_ACCESS_KEY, ...webhookSecretValues(process.env)] });
  // Signals are caught from the start: one that arrives while the worker is still starting is
  // acted on as soon as it is up, instead of killing the process mid-start.
  let stopRequested: NodeJS.Signals | undefined;
  let onStop: ((signal: NodeJS.Signals) => void) | undefined;
  const stop = (signal: NodeJS.Signals) => {
    // A second signal means "now": leave in-flight jobs to be recovered by another worker.
    process.once(signal, () => process.exit(130));
    if (onStop) onStop(signal);
    else stopRequested = signal;
  };
  process.once('SIGINT', stop);
  process.once('SIGTERM', stop);
  const worker = await workerFromEnv(env, logger, accounts, endpoints);
  const { timedOut } = await new Promise<{ timedOut: boolean }>((resolve) => {
    onStop = (signal) => {
      logger.info({ signal }, `Received ${signal}`);
      void worker.close().then(resolve);
    };
    if (stopRequested) onStop(stopRequested);
  });
  logger.flush();
  // Exit explicitly: after a timed-out shutdown BullMQ still holds its connections open.
  process.exit(timedOut ? 1 : 0);
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
