/**
 * The health of a long-running process as a file, for container HEALTHCHECKs: the process writes
 * what it can reach (Redis, storage) every interval; `zimage health` reads it. A file, not a
 * port: the worker serves no HTTP, and a check must not need the process's network to answer.
 * A process that hangs stops writing, and the file's age says so.
 */
import { readFile, rename, writeFile } from 'node:fs/promises';

export type CheckState = 'ok' | 'unavailable';

export interface HealthReport {
  ok: boolean;
  /** When it was written (ISO). */
  at: string;
  role: string;
  checks: Record<string, CheckState>;
}

export const HEALTH_INTERVAL_MS = 10_000;

/** Writes the report now and every `intervalMs` until `stop()`; a write that fails is retried at the next tick. */
export function startHealthFile(path: string, role: string, probe: () => Promise<Record<string, CheckState>>, intervalMs = HEALTH_INTERVAL_MS): { stop(): void } {
  let timer: NodeJS.Timeout | undefined;
  let stopped = false;
  const tick = async () => {
    const checks = await probe().catch(() => ({ probe: 'unavailable' as const }));
    const report: HealthReport = { ok: Object.values(checks).every((state) => state === 'ok'), at: new Date().toISOString(), role, checks };
    // Written beside and renamed: a reader never sees half a file.
    const temporary = `${path}.${process.pid}.tmp`;
    await writeFile(temporary, `${JSON.stringify(report)}\n`)
      .then(() => rename(temporary, path))
      .catch(() => {});
    if (!stopped) timer = setTimeout(() => void tick(), intervalMs).unref();
  };
  void tick();
  return {
    stop() {
      stopped = true;
      clearTimeout(timer);
    },
  };
}

/** Settles one check, within `timeoutMs`: a Redis or store that does not answer is unavailable. */
export async function checkWithin(check: () => Promise<unknown>, timeoutMs = 5_000): Promise<CheckState> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<CheckState>((resolve) => (timer = setTimeout(() => resolve('unavailable'), timeoutMs)));
  try {
    return await Promise.race([check().then(() => 'ok' as const, () => 'unavailable' as const), timeout]);
  } finally {
    clearTimeout(timer);
  }
}

export type HealthVerdict = { healthy: true; report: HealthReport } | { healthy: false; reason: string };

/** Healthy when the file says ok and was written within `maxAgeMs` of `now`. */
export async function readHealth(path: string, maxAgeMs: number, now = Date.now()): Promise<HealthVerdict> {
  let report: HealthReport;
  try {
    report = JSON.parse(await readFile(path, 'utf8')) as HealthReport;
  } catch (error) {
    const missing = (error as NodeJS.ErrnoException).code === 'ENOENT';
    return { healthy: false, reason: missing ? `no health file at ${path} (is zimage worker or api running with ZIMAGE_HEALTH_FILE?)` : `health file ${path} is unreadable` };
  }
  const age = now - Date.parse(report.at);
  if (!(age <= maxAgeMs)) return { healthy: false, reason: `health file not written for ${Math.round(age / 1000)} s (the process is stuck or gone)` };
  if (!report.ok) {
    const down = Object.entries(report.checks).filter(([, state]) => state !== 'ok').map(([name]) => name);
    return { healthy: false, reason: `${down.join(', ')} unavailable` };
  }
  return { healthy: true, report };
}
