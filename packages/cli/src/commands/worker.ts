import { createLogger, loadConfig, requireAccount, resolveAccounts, workerEnvSchema } from '@zimage/shared';
import { workerFromEnv } from '../worker-from-env.js';

/** `zimage worker`: runs until SIGINT/SIGTERM, then drains in-flight jobs and exits 0. */
export async function workerCommand(): Promise<number> {
  const env = loadConfig(workerEnvSchema, process.env, requireAccount);
  const accounts = resolveAccounts(env, process.env);
  const logger = createLogger({ level: env.LOG_LEVEL, secrets: [...accounts.map((a) => a.apiKey), env.AWS_SECRET_ACCESS_KEY] });
  const worker = await workerFromEnv(env, logger, accounts);
  const { timedOut } = await new Promise<{ timedOut: boolean }>((resolve) => {
    const stop = (signal: NodeJS.Signals) => {
      logger.info({ signal }, `Received ${signal}`);
      // A second signal means "now": leave in-flight jobs to be recovered by another worker.
      process.once(signal, () => process.exit(130));
      void worker.close().then(resolve);
    };
    process.once('SIGINT', stop);
    process.once('SIGTERM', stop);
  });
  logger.flush();
  // Exit explicitly: after a timed-out shutdown BullMQ still holds its connections open.
  process.exit(timedOut ? 1 : 0);
}
