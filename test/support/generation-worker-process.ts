/**
 * A generation worker in a process of its own, for tests that kill it (SIGKILL) mid-job as a crash
 * would. Its options come as JSON in ZIMAGE_TEST_WORKER; it prints "ready" once it takes jobs.
 */
import { createLogger, createStorage } from '@zimage/shared';
import { startGenerationWorker } from '@zimage/worker';

export interface WorkerProcessOptions {
  redisUrl: string;
  prefix: string;
  baseUrl: string;
  apiKey: string;
  outputDir: string;
  /** A short lock makes the dead worker's job count as stalled soon after the kill. */
  lockDurationMs: number;
  /**
   * The fleet runs one stalled check per interval (a key in Redis set by whichever worker checked
   * last, for its own interval): keep it as short as the survivor's, or its checks wait this out.
   */
  stalledIntervalMs: number;
}

const options = JSON.parse(process.env['ZIMAGE_TEST_WORKER'] ?? '{}') as WorkerProcessOptions;
await startGenerationWorker({
  redisUrl: options.redisUrl,
  prefix: options.prefix,
  logger: createLogger({ level: process.env['TEST_LOG_LEVEL'] ?? 'silent', pretty: false }),
  accounts: [{ id: 'test', region: 'singapore', baseUrl: options.baseUrl, apiKey: options.apiKey, rpm: 60_000 }],
  storage: createStorage({ url: `file:${options.outputDir}` }),
  concurrency: 1,
  maxImageBytes: 20 * 1024 * 1024,
  requestTimeoutMs: 600_000,
  connectTimeoutMs: 2_000,
  shutdownTimeoutMs: 1_000,
  governorLogIntervalMs: 0,
  lockDurationMs: options.lockDurationMs,
  stalledIntervalMs: options.stalledIntervalMs,
});
process.stdout.write('ready\n');
