/**
 * `zimage demo`: the whole pipeline on examples/catalogue.csv with nothing configured.
 *
 * Redis: REDIS_URL (default 127.0.0.1:6379) if it answers, else a private redis-server from PATH.
 * Upstream: the in-process emulator, unless DASHSCOPE_API_KEY is set (then the real API).
 * Storage: STORAGE_URL, default ./output. Prints progress, a summary and the results manifest.
 */
import { existsSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { createEmulator, type Emulator } from '@zimage/emulator';
import { createProducer, ingestBatchFile } from '@zimage/producer';
import {
  AppError,
  createLogger,
  createRedisConnection,
  loadConfig,
  resolveAccounts,
  type AccountConfig,
  startRedisServer,
  waitForRedis,
  workerEnvSchema,
  type RedisServerHandle,
} from '@zimage/shared';
import { defaultManifestPath } from '../manifest-path.js';
import { formatSummary, watchBatch, writeManifest } from '../watch-batch.js';
import { workerFromEnv } from '../worker-from-env.js';

/** The built CLI ships the demo file in dist/demo; from the sources it is the checkout's examples/. */
const CATALOGUE_CANDIDATES = ['../demo/catalogue.csv', '../../../../examples/catalogue.csv'].map((path) => resolve(dirname(fileURLToPath(import.meta.url)), path));

export async function demoCommand(flags: { file?: string; json?: boolean }): Promise<number> {
  const env = loadConfig(workerEnvSchema, process.env);
  const file = flags.file ?? CATALOGUE_CANDIDATES.find((path) => existsSync(path)) ?? CATALOGUE_CANDIDATES[0]!;
  if (!existsSync(file)) throw new AppError('REQUEST_INVALID', `demo file not found: ${file}`);
  const logger = createLogger({ level: env.LOG_LEVEL === 'info' ? 'warn' : env.LOG_LEVEL, secrets: [env.DASHSCOPE_API_KEY, env.AWS_SECRET_ACCESS_KEY] });
  const say = (line: string) => process.stderr.write(`${line}\n`);
  const cleanups: (() => Promise<unknown>)[] = [];

  try {
    // Redis
    let redisUrl = env.REDIS_URL;
    const probe = createRedisConnection(redisUrl, 'producer');
    const reachable = await waitForRedis(probe, redisUrl, 1_500).then(() => true, () => false);
    probe.disconnect();
    let privateRedis: RedisServerHandle | undefined;
    if (!reachable) {
      try {
        privateRedis = await startRedisServer();
      } catch (error) {
        throw new AppError(
          'REDIS_UNAVAILABLE',
          `No Redis at REDIS_URL=${redisUrl} and no redis-server on PATH. Get one of: ` +
            '(1) `apt-get install redis-server` (or brew install redis), ' +
            '(2) `docker compose up -d redis`, ' +
            '(3) REDIS_URL pointing at any Redis ≥ 6.2.',
          { cause: error },
        );
      }
      cleanups.push(() => privateRedis?.stop() ?? Promise.resolve());
      redisUrl = privateRedis.url;
      say(`Redis: none at ${env.REDIS_URL}; started a private redis-server at ${redisUrl}`);
    } else {
      say(`Redis: ${env.REDIS_URL}`);
    }

    // Upstream
    let emulator: Emulator | undefined;
    let accounts: AccountConfig[];
    if (env.DASHSCOPE_API_KEY || process.env['ZIMAGE_ACCOUNTS']) {
      accounts = resolveAccounts(env, process.env);
      say(`Upstream: the real DashScope API (${accounts.map((a) => `${a.id}/${a.region}`).join(', ')}) — images are billed`);
    } else {
      emulator = await createEmulator({ region: env.DASHSCOPE_REGION });
      cleanups.unshift(() => emulator?.close() ?? Promise.resolve());
      accounts = [{ id: 'emulator', region: env.DASHSCOPE_REGION, apiKey: 'sk-zimage-demo-emulator', baseUrl: emulator.url, rpm: env.ZIMAGE_RPM }];
      say(`Upstream: the local emulator at ${emulator.url} (set DASHSCOPE_API_KEY to use the real API); its images are stand-ins of the requested size, not renders of the prompts`);
    }

    // Worker and producer
    // Its own key prefix: the demo's worker must not pick up (and maybe pay for) someone's backlog
    // on a shared Redis, nor leave its emulator images in their batches.
    const prefix = `${env.ZIMAGE_PREFIX}-demo`;
    const runEnv = { ...env, REDIS_URL: redisUrl, ZIMAGE_PREFIX: prefix };
    const worker = await workerFromEnv(runEnv, logger, accounts);
    cleanups.unshift(() => worker.close());
    const producer = await createProducer({ redisUrl, prefix });
    cleanups.unshift(() => producer.close());
    const pause = await producer.pauseState();
    if (pause.paused) {
      throw new AppError('CONFIG_INVALID', `The queue is paused (${pause.reason?.message ?? 'by an operator'}); fix the cause and run \`zimage resume\``);
    }
    say(`Storage: ${env.STORAGE_URL}`);

    const report = await ingestBatchFile(producer, { path: file, keyTemplate: 'catalogue/{sku}.png', rowKeyColumn: 'sku' });
    say(`Enqueued ${report.enqueued} images from ${file} as batch ${report.batchId}`);
    const outcome = await watchBatch(producer, report.batchId);
    say(formatSummary(outcome));
    if (outcome.pausedReason) {
      say(`Queue paused: ${outcome.pausedReason}`);
      return 1;
    }
    const outputDir = env.STORAGE_URL.startsWith('file:') ? env.STORAGE_URL.slice('file:'.length).replace(/^\/\/(?=\/)/, '') : '.';
    const manifest = defaultManifestPath(env.STORAGE_URL, report.batchId);
    await writeManifest(producer, report.batchId, manifest);
    say(`Images${emulator ? ' (emulator stand-ins)' : ''}: ${env.STORAGE_URL.startsWith('file:') ? resolve(outputDir, 'catalogue') : `${env.STORAGE_URL}/catalogue/`}`);
    say(`Results manifest: ${resolve(manifest)}`);
    // From the checkout's sources (`pnpm demo`) the command is `pnpm zimage`; installed, `zimage`.
    const zimage = import.meta.url.endsWith('.ts') ? 'pnpm zimage' : 'zimage';
    if (!privateRedis) say(`Status: ZIMAGE_PREFIX=${prefix} ${zimage} status ${report.batchId}`);
    if (emulator) {
      const stats = emulator.stats();
      say(`Emulator: ${stats.requests} requests, ${stats.throttled} throttled, ${stats.imagesGenerated} images billed ($${stats.billedUsd.toFixed(3)} at list price)`);
    }
    if (flags.json) {
      const emulatorStats = emulator ? emulator.stats() : undefined;
      process.stdout.write(`${JSON.stringify({ batchId: report.batchId, status: outcome.status, seconds: outcome.seconds, imagesPerMinute: outcome.imagesPerMinute, manifest: resolve(manifest), emulator: emulatorStats ? { requests: emulatorStats.requests, throttled: emulatorStats.throttled, imagesBilled: emulatorStats.imagesGenerated } : undefined })}\n`);
    }
    return outcome.status.failed + outcome.status.expired > 0 ? 1 : 0;
  } finally {
    for (const cleanup of cleanups) await cleanup().catch((error: unknown) => logger.warn({ err: error }, 'Cleanup failed'));
  }
}
