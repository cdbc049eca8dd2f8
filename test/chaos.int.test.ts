/**
 * The short chaos run inside `pnpm test` (60 jobs a scenario; `pnpm chaos` runs 1,000): real
 * worker processes killed with SIGKILL, a Redis restart with AOF, an S3 outage, an upstream fault
 * mix with bursts of throttling, the webhook receiver down, SIGTERM to every worker. Every
 * invariant must hold in every scenario.
 */
import { describe, expect, it } from 'vitest';
import { REPO_ROOT } from './support/run-cli.js';
import { spawn } from 'node:child_process';

describe('chaos (short)', () => {
  it('loses nothing, stores each image once, delivers every event and webhook, and pays once, under six kinds of fault', async () => {
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
    const report = JSON.parse(last) as { scenarios: Record<string, { ok: boolean; jobs: number; succeeded: number; eventsMissing: number; webhooksMissing: number; unexplainedDoubleBills: number }> };
    const names = Object.keys(report.scenarios);
    expect(names).toEqual(['kill9Workers', 'redisRestart', 's3Outage', 'upstreamFaults', 'webhookReceiverDown', 'sigtermAllWorkers']);
    for (const name of names) {
      const s = report.scenarios[name]!;
      expect({ name, ...s }, stderr.split('\n').filter((l) => /BROKEN|ERROR/.test(l)).join('\n')).toMatchObject({ name, ok: true, eventsMissing: 0, webhooksMissing: 0, unexplainedDoubleBills: 0 });
      expect(s.succeeded).toBe(s.jobs);
    }
    expect(code).toBe(0);
  }, 600_000);
});
