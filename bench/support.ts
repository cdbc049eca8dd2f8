/**
 * Shared pieces of the benchmark: child worker processes, waiting, time limits, memory readings,
 * event-loop delay, percentiles.
 */
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { copyFileSync, mkdirSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { builtinModules, createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { fileURLToPath, pathToFileURL } from 'node:url';
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
export function spawnNode(script: string[], env: Record<string, string>, options: { tsx?: boolean; ipc?: boolean } = {}): WorkerProcess {
  const loader = options.tsx === false ? [] : ['--conditions=zimage-source', '--import', 'tsx'];
  const child: ChildProcess = spawn(process.execPath, [...(process.env['BENCH_NODE_ARGS']?.split(' ') ?? []), ...loader, ...script], {
    cwd: ROOT,
    env: { PATH: process.env['PATH'] ?? '', HOME: process.env['HOME'] ?? '/tmp', LOG_LEVEL: 'warn', ...env },
    // BENCH_WORKER_LOGS=1 shows the children's logs (pino writes to stdout).
    stdio: ['ignore', process.env['BENCH_WORKER_LOGS'] ? 'inherit' : 'ignore', 'inherit', ...(options.ipc ? (['ipc'] as const) : [])],
  });
  live.add(child);
  const exited = new Promise<number | null>((resolve) => {
    child.once('exit', (code) => {
      live.delete(child);
      resolve(code);
    });
    // A child that failed to spawn never exits; its 'error' must not crash the bench or hang stop().
    child.once('error', () => {
      live.delete(child);
      resolve(null);
    });
  });
  return {
    child,
    async stop() {
      if (child.exitCode !== null || child.signalCode !== null || child.pid === undefined) return child.exitCode;
      child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), 20_000);
      const code = await exited;
      clearTimeout(timer);
      return code;
    },
  };
}

/** Every child process spawned by `spawnNode` that has not exited yet. */
const live = new Set<ChildProcess>();

/**
 * SIGKILLs every child still running (synchronous, so it can run in an `exit` handler). Runs
 * automatically when the bench process exits, whatever the reason, so no worker outlives it.
 */
export function killAllChildren(): number {
  let killed = 0;
  for (const child of live) {
    if (child.exitCode === null && child.signalCode === null) {
      child.kill('SIGKILL');
      killed += 1;
    }
  }
  live.clear();
  return killed;
}
process.once('exit', killAllChildren);

/** Rejects with a clear error when `promise` takes longer than `ms` (the promise itself runs on). */
export async function withTimeout<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`bench: ${what} took longer than ${Math.round(ms / 1000)} s`)), ms);
  });
  try {
    return await Promise.race([promise, timeout]);
  } finally {
    clearTimeout(timer);
  }
}

/**
 * Watches this process's event-loop delay (the emulator runs in it, and stamps arrivals when the
 * loop gets to them). `stop()` returns the p99 and the maximum, ms.
 */
export function watchEventLoop(): { stop(): { p99Ms: number; maxMs: number } } {
  const histogram = monitorEventLoopDelay({ resolution: 10 });
  histogram.enable();
  return {
    stop() {
      histogram.disable();
      return { p99Ms: round(histogram.percentile(99) / 1e6, 1), maxMs: round(histogram.max / 1e6, 1) };
    },
  };
}

export function spawnWorkers(count: number, env: Record<string, string>, cli?: string): WorkerProcess[] {
  return Array.from({ length: count }, () => (cli ? spawnPlainNode([cli, 'worker'], env) : spawnNode(['packages/cli/src/main.ts', 'worker'], env)));
}

/** Like `spawnNode`, for a plain JavaScript file: no tsx loader, no source conditions. */
function spawnPlainNode(script: string[], env: Record<string, string>): WorkerProcess {
  return spawnNode(script, env, { tsx: false });
}

let bundled: Promise<string> | undefined;

/** The little of esbuild's API used here (it is tsx's dependency, not the workspace's, so no types). */
interface ResolveArgs {
  path: string;
  kind: string;
  resolveDir: string;
  importer: string;
  pluginData?: unknown;
}
interface PluginBuild {
  onResolve(options: { filter: RegExp }, callback: (args: ResolveArgs) => Promise<object | undefined>): void;
  resolve(path: string, options: Omit<ResolveArgs, 'path'>): Promise<{ path: string; errors: object[] }>;
}
interface Esbuild {
  build(options: Record<string, unknown> & { plugins: { name: string; setup(build: PluginBuild): void }[] }): Promise<unknown>;
}

/**
 * The `zimage` CLI bundled once per bench run (esbuild, the compiler tsx itself uses): the
 * workspace's TypeScript in one ES module, every npm package imported from where it is installed.
 * A worker started from it loads in about half the CPU of one started through tsx (~1.5 s against
 * ~3.5 s here), which matters when the limiters scenario starts six fleets. The code is the same;
 * and every fleet of the run gets the same build, even if the source is edited meanwhile.
 */
export function bundledCli(): Promise<string> {
  return (bundled ??= (async () => {
    const require = createRequire(createRequire(import.meta.url).resolve('tsx'));
    const esbuild = require('esbuild') as Esbuild;
    const dir = mkdtempSync(join(tmpdir(), 'zimage-bench-cli-'));
    process.once('exit', () => rmSync(dir, { recursive: true, force: true }));
    // The CLI reads its version from `../package.json` beside its entry point, as in the package.
    mkdirSync(join(dir, 'bin'));
    copyFileSync(`${ROOT}packages/cli/package.json`, join(dir, 'package.json'));
    const outfile = join(dir, 'bin', 'cli.mjs');
    const builtins = new Set(builtinModules);
    await esbuild.build({
      entryPoints: [`${ROOT}packages/cli/src/main.ts`],
      outfile,
      bundle: true,
      platform: 'node',
      format: 'esm',
      target: 'node20',
      conditions: ['zimage-source'],
      logLevel: 'error',
      // CommonJS code inside the bundle (none expected) gets a `require` of its own.
      banner: { js: "import { createRequire as __benchRequire } from 'node:module'; const require = __benchRequire(import.meta.url);" },
      plugins: [
        {
          name: 'installed-packages',
          setup(build) {
            // Workspace packages are bundled; npm packages stay external, by absolute URL, so
            // each resolves from its own package (pnpm does not hoist them to one node_modules).
            build.onResolve({ filter: /^[^./]/ }, async (args) => {
              if (args.path.startsWith('@zimage/') || args.pluginData === 'inner') return undefined;
              if (args.path.startsWith('node:') || builtins.has(args.path)) return { path: args.path, external: true };
              const resolved = await build.resolve(args.path, { kind: args.kind, resolveDir: args.resolveDir, importer: args.importer, pluginData: 'inner' });
              if (resolved.errors.length > 0) return { errors: resolved.errors };
              return { path: pathToFileURL(resolved.path).href, external: true };
            });
          },
        },
      ],
    });
    return outfile;
  })());
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

let clockTicks: number | undefined;

/** User + system CPU a process has used so far, ms (Linux /proc; 0 when unreadable). */
export function cpuMsOf(pid: number | undefined): number {
  if (!pid) return 0;
  try {
    clockTicks ??= Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim()) || 100;
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // Fields after "pid (comm) ": utime is the 12th, stime the 13th.
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return ((Number(fields[11]) + Number(fields[12])) * 1000) / clockTicks;
  } catch {
    return 0;
  }
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
