/**
 * The short chaos run inside `pnpm test` (60 jobs a scenario; `pnpm chaos` runs 1,000): real
 * worker processes killed with SIGKILL, a Redis restart with AOF, S3 outages (short, long, and
 * refusing with 403), upstream faults (a mix with throttling bursts, every call 503, "Model not
 * exist."), the webhook receiver down, SIGTERM to every worker, a batch cancelled during a
 * storage outage, and cancelled jobs re-submitted. Every invariant must hold in every scenario.
 */
import { describe, expect, it } from 'vitest';
import { REPO_ROOT } from './support/run-cli.js';
import { spawn } from 'node:child_process';

/** What each scenario's jobs must end as (the scenario declares it; this pins it). */
const EXPECTED = {
  kill9Workers: 'allSucceeded',
  redisRestart: 'allSucceeded',
  s3Outage: 'allSucceeded',
  upstreamFaults: 'allSucceeded',
  webhookReceiverDown: 'allSucceeded',
  sigtermAllWorkers: 'allSucceeded',
  s3LongOutage: 'allSucceeded',
  s3Refused403: 'allSucceeded',
  upstream503: 'allSucceeded',
  modelNotExist: 'allSucceeded',
  cancelDuringStorageOutage: 'succeededOrCancelled',
  resubmitCancelled: 'allSucceeded',
} as const;

/** About 5 minutes on 2 cores when every scenario passes; a broken one can wait out its batch timeout. */
const TIMEOUT_MS = 20 * 60_000;

interface Row {
  ok: boolean;
  expected: string;
  jobs: number;
  succeeded: number;
  cancelled: number;
  lost: number;
  conflictingObjects: number;
  discardedPaid: number;
  doubleBilled: number;
  doubleBillBound: number;
  eventsMissing: number;
  webhooksMissing: number;
  unexplainedDoubleBills: number;
}

describe('chaos (short)', () => {
  it(
    'loses nothing, stores each image once, keeps every paid image, delivers every event and webhook, and pays once, under twelve kinds of fault',
    async () => {
      const child = spawn(process.execPath, ['--conditions=zimage-source', '--import', 'tsx', 'chaos/main.ts', '--short'], {
        cwd: REPO_ROOT,
        env: { PATH: process.env['PATH'] ?? '', HOME: process.env['HOME'] ?? '/tmp' },
        stdio: ['ignore', 'pipe', 'pipe'],
      });
      let stdout = '';
      let stderr = '';
      child.stdout.on('data', (c: Buffer) => (stdout += c.toString()));
      child.stderr.on('data', (c: Buffer) => (stderr += c.toString()));
      const code = await new Promise<number | null>((resolve) => child.once('exit', resolve));
      const last = stdout.trim().split('\n').at(-1) ?? '';
      const report = JSON.parse(last) as { scenarios: Record<string, Row> };
      const names = Object.keys(report.scenarios);
      expect(names).toEqual(Object.keys(EXPECTED));
      const broken = stderr.split('\n').filter((l) => /BROKEN|ERROR/.test(l)).join('\n');
      for (const name of names) {
        const s = report.scenarios[name]!;
        expect({ name, ...s }, broken).toMatchObject({
          name,
          ok: true,
          expected: EXPECTED[name as keyof typeof EXPECTED],
          lost: 0,
          conflictingObjects: 0,
          discardedPaid: 0,
          eventsMissing: 0,
          webhooksMissing: 0,
          unexplainedDoubleBills: 0,
        });
        expect(s.doubleBilled, name).toBeLessThanOrEqual(s.doubleBillBound);
        if (s.expected === 'allSucceeded') expect(s.succeeded, name).toBe(s.jobs);
        else expect({ name, total: s.succeeded + s.cancelled, cancelled: s.cancelled > 0 }).toEqual({ name, total: s.jobs, cancelled: true });
      }
      expect(code).toBe(0);
    },
    TIMEOUT_MS,
  );
});
