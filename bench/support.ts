/** Shared pieces of the benchmark: child worker processes, waiting, memory readings, percentiles. */
import { spawn, type ChildProcess } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import type { Producer } from '@zimage/producer';

export const ROOT = fileURLToPath(new URL('..', import.meta.url));
export const API_KEY = 'sk-bench-0123456789abcdef';

export interface WorkerProcess {
  child: ChildProcess;
  stop(): Promise<number | null>;
}

/**
 * A `zimage worker` (or any script) as a real child process, like production. `BENCH_NODE_ARGS`
 * adds Node flags to every child, e.g. `--cpu-prof --cpu-prof-dir=/tmp/prof` to profile workers.
 */
export function spawnNode(script: string[], env: Record<string, string>): WorkerProcess {
  const child = spawn(process.execPath, [...(process.env['BENCH_NODE_ARGS']?.split(' ') ?? []), '--conditions=zimage-source', '--import', 'tsx', ...script], {
    cwd: ROOT,
    env: { PATH: process.env['PATH'] ?? '', HOME: process.env['HOME'] ?? '/tmp', LOG_LEVEL: 'warn', ...env },
    // BENCH_WORKER_LOGS=1 shows the children's logs (pino writes to stdout).
    stdio: ['ignore', process.env['BENCH_WORKER_LOGS'] ? 'inherit' : 'ignore', 'inherit'],
  });
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  return {
    child,
    async stop() {
      if (child.exitCode === null) child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), 20_000);
      const code = await exited;
      clearTimeout(timer);
      return code;
    },
  };
}

export function spawnWorkers(count: number, env: Record<string, string>): WorkerProcess[] {
  return Array.from({ length: count }, () => spawnNode(['packages/cli/src/main.ts', 'worker'], env));
}

export async function waitFor(what: string, probe: () => Promise<boolean>, timeoutMs: number, everyMs = 100): Promise<void> {
  const until = Date.now() + timeoutMs;
  while (!(await probe())) {
    if (Date.now() > until) throw new Error(`bench: timed out after ${timeoutMs} ms waiting for ${what}`);
    await sleep(everyMs);
  }
}

export async function waitForBatch(producer: Producer, batchId: string, timeoutMs: number): Promise<void> {
  await waitFor(`batch ${batchId}`, async () => !!(await producer.getBatch(batchId))?.completedAt, timeoutMs, 50);
}

export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** Resident and peak resident memory of a process, MB (Linux /proc). */
export function memoryOf(pid: number | undefined): { rssMb: number; peakMb: number } | undefined {
  if (!pid) return undefined;
  try {
    const status = readFileSync(`/proc/${pid}/status`, 'utf8');
    const kb = (field: string) => Number(new RegExp(`^${field}:\\s+(\\d+) kB`, 'm').exec(status)?.[1] ?? 0);
    return { rssMb: round(kb('VmRSS') / 1024, 1), peakMb: round(kb('VmHWM') / 1024, 1) };
  } catch {
    return undefined;
  }
}

export function percentile(values: readonly number[], p: number): number {
  if (values.length === 0) return 0;
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)] as number;
}

export function round(value: number, digits = 3): number {
  const f = 10 ** digits;
  return Math.round(value * f) / f;
}
