/**
 * Resumes the pauses that heal by themselves. Every worker process runs one; each tick reads the
 * recorded pause reason and:
 * - `STORAGE_REFUSED`: writes a probe object; when storage accepts it, resumes (the parked paid
 *   images are then stored first: they are already in the queue);
 * - `UPSTREAM_OUTAGE`: once an account's breaker has cooled down, resumes; the breaker lets one
 *   probe job through, and a failed probe pauses again (for twice as long).
 * Pauses for anything else (a bad key, arrears, a missing model) wait for `zimage resume`.
 */
import { isAppError, type Logger, type Storage } from '@zimage/shared';
import type { CircuitBreaker } from './circuit-breaker.js';
import type { QueuePause } from './queue-pause.js';

export interface PauseSupervisorOptions {
  pause: QueuePause;
  storage: Pick<Storage, 'probeWrite'>;
  breaker: CircuitBreaker;
  accountIds: readonly string[];
  logger: Logger;
  /** @defaultValue 5000 */
  intervalMs?: number;
}

export function startPauseSupervisor(options: PauseSupervisorOptions): { stop(): void } {
  const intervalMs = options.intervalMs ?? 5_000;
  let running = false;
  let failedProbes = 0;

  async function tick(): Promise<void> {
    const reason = await options.pause.reason();
    if (reason?.code === 'STORAGE_REFUSED') {
      try {
        await options.storage.probeWrite();
      } catch (error) {
        failedProbes += 1;
        // Once a minute is enough to say it is still down.
        if ((failedProbes - 1) % Math.max(1, Math.round(60_000 / intervalMs)) === 0) {
          const code = isAppError(error) ? error.code : 'INTERNAL';
          options.logger.error({ err: error, failedProbes }, `Storage still refuses writes (${code}); the queue stays paused, paid images are kept`);
        }
        return;
      }
      failedProbes = 0;
      await options.pause.resumeIf('STORAGE_REFUSED', 'a probe write to storage succeeded');
    } else if (reason?.code === 'UPSTREAM_OUTAGE') {
      for (const accountId of options.accountIds) {
        const state = await options.breaker.state(accountId);
        if (state.state !== 'open' || state.openUntil <= Date.now()) {
          await options.pause.resumeIf('UPSTREAM_OUTAGE', `account ${accountId}'s breaker cooled down; one probe call goes through`);
          return;
        }
      }
    }
  }

  const timer = setInterval(() => {
    if (running) return;
    running = true;
    tick()
      .catch((error: unknown) => options.logger.warn({ err: error }, 'Pause supervisor tick failed'))
      .finally(() => (running = false));
  }, intervalMs);
  timer.unref();
  return { stop: () => clearInterval(timer) };
}

