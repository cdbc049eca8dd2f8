/** `zimage health`: exit 0 when the process writing ZIMAGE_HEALTH_FILE is healthy, 1 otherwise (a container HEALTHCHECK). */
import { AppError, baseEnvSchema, loadConfig } from '@zimage/shared';
import { HEALTH_INTERVAL_MS, readHealth } from '../health-file.js';
import { parseInteger } from '../parse-options.js';

export async function healthCommand(flags: { maxAge?: string; json?: boolean }): Promise<number> {
  const env = loadConfig(baseEnvSchema, process.env);
  if (!env.ZIMAGE_HEALTH_FILE) throw new AppError('CONFIG_INVALID', 'ZIMAGE_HEALTH_FILE: set it (an absolute path) for zimage worker or api to write, and for zimage health to read');
  // Three missed writes before a process counts as stuck.
  const maxAgeMs = (parseInteger('--max-age', flags.maxAge) ?? (3 * HEALTH_INTERVAL_MS) / 1000) * 1000;
  const verdict = await readHealth(env.ZIMAGE_HEALTH_FILE, maxAgeMs);
  if (flags.json) {
    process.stdout.write(`${JSON.stringify(verdict)}\n`);
    return verdict.healthy ? 0 : 1;
  }
  if (verdict.healthy) {
    process.stdout.write(`healthy: ${verdict.report.role}, ${Object.keys(verdict.report.checks).join(' and ')} ok\n`);
    return 0;
  }
  process.stdout.write(`unhealthy: ${verdict.reason}\n`);
  return 1;
}
