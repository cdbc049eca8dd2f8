/**
 * The command line through a batch's whole life, as a user runs it (real child processes against a
 * real Redis, worker and emulator): list batches, re-attach with status --watch (warned while no
 * worker runs), cancel, download the results resumably, --env-file, --json on every command, and
 * manifests beside the images.
 */
import { createHash } from 'node:crypto';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { collect, REPO_ROOT, runCli, spawnCli } from './support/run-cli.js';
import { startStack, type Stack } from './support/stack.js';
import { until } from './support/until.js';

/** Generous for a loaded 2-core machine; each step ends on a condition long before. */
const BUDGET_MS = 90_000;
const dir = mkdtempSync(join(tmpdir(), 'zimage-cli-life-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function env(stack: Stack): Record<string, string> {
  return { REDIS_URL: stack.redisUrl, ZIMAGE_PREFIX: stack.prefix, STORAGE_URL: `file:${stack.outputDir}` };
}

/** Each command line's stdout, four processes at a time (each is a Node start). */
async function inBatches(commandLines: string[][]): Promise<string[]> {
  const out: string[] = [];
  for (let i = 0; i < commandLines.length; i += 4) {
    const results = await Promise.all(commandLines.slice(i, i + 4).map((args) => runCli(args, {}, BUDGET_MS)));
    out.push(...results.map((r) => r.stdout));
  }
  return out;
}

function sha256(path: string): string {
  return createHash('sha256').update(readFileSync(path)).digest('hex');
}

describe('zimage lifecycle commands', () => {
  it('batches lists newest first with state, counts and spend; cancel stops a batch or a job; --json on both', async () => {
    await using stack = await startStack({ worker: false });
    const first = await stack.producer.enqueueMany([{ prompt: 'one a' }, { prompt: 'one b' }].map((r) => ({ ...r, size: '512*512' })));
    const second = await stack.producer.enqueueMany([{ prompt: 'two a', size: '512*512' }]);
    const single = await stack.producer.enqueue({ prompt: 'a single job', size: '512*512' });

    const listed = await runCli(['batches'], env(stack));
    expect(listed.code, listed.stderr).toBe(0);
    const lines = listed.stdout.trim().split('\n');
    expect(lines.map((l) => l.split(/\s+/)[0])).toEqual([second.batchId, first.batchId]);
    expect(lines[1]).toMatch(/running .* 0\/2 succeeded · 0 failed · 0 expired · 0 cancelled · 2 pending {2}\$0\.000/);

    const cancelled = await runCli(['cancel', first.batchId, '--json'], env(stack));
    expect(cancelled.code, cancelled.stderr).toBe(0);
    expect(JSON.parse(cancelled.stdout)).toEqual({ batchId: first.batchId, cancelled: 2, cancelling: 0, storing: 0, finished: 0 });
    const job = await runCli(['cancel', single.jobId], env(stack));
    expect(job.stdout).toBe(`job ${single.jobId}: cancelled\n`);
    expect((await stack.producer.getJob(single.jobId))?.state).toBe('cancelled');

    const completed = await runCli(['batches', '--state', 'completed', '--json'], env(stack));
    const page = JSON.parse(completed.stdout) as { batches: { batchId: string; state: string; cancelled: number }[]; nextCursor: string | null };
    expect(page.batches.map((b) => [b.batchId, b.state, b.cancelled])).toEqual([[first.batchId, 'completed', 2]]);
    expect(page.nextCursor).toBeNull();
    const paged = await runCli(['batches', '--limit', '1'], env(stack));
    expect(paged.stdout.split('\n').filter(Boolean)).toHaveLength(1);
    expect(paged.stderr).toMatch(/^More: zimage batches --cursor \S+\n$/);

    const badState = await runCli(['batches', '--state', 'done'], env(stack));
    expect(badState.code).toBe(2);
    expect(badState.stderr).toMatch(/^error USAGE_INVALID: --state: must be one of running, cancelling, completed\n/);
    const unknown = await runCli(['cancel', 'b_nosuch'], env(stack));
    expect(unknown.code).toBe(2);
    expect(unknown.stderr).toMatch(/^error JOB_NOT_FOUND: no batch or job with id b_nosuch\n/);
  });

  it('status --watch warns while no worker is connected, then follows the batch to its end once one starts', async () => {
    await using stack = await startStack({ worker: false });
    const { batchId } = await stack.producer.enqueueMany([1, 2, 3].map((i) => ({ prompt: `watched ${i}`, size: '512*512' })));
    const child = spawnCli(['status', batchId, '--watch'], env(stack));
    let stderr = '';
    child.stderr?.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
    const done = collect(child, BUDGET_MS);
    await until(() => stderr.includes('no worker is connected'), BUDGET_MS);
    expect(stderr).toContain(`queue "generate" (prefix ${stack.prefix})`);
    await stack.startWorker();
    const result = await done;
    expect(result.code, stderr).toBe(0);
    expect(stderr).toMatch(/3 succeeded, 0 failed, 0 expired, 0 pending \(of 3\)/);
    expect(result.stdout).toMatch(/: completed\n {2}total 3 · succeeded 3/);
  });

  it('results --download writes every image under its key and the manifest, and a rerun fetches only what is missing or damaged', async () => {
    await using stack = await startStack();
    const { batchId } = await stack.producer.enqueueMany([1, 2, 3, 4].map((i) => ({ prompt: `shelf item ${i}`, size: '512*512', key: `shelf/item-${i}.png` })));
    await stack.waitForBatch(batchId, BUDGET_MS);

    const manifest = await runCli(['results', batchId], env(stack));
    expect(manifest.code, manifest.stderr).toBe(0);
    const entries = manifest.stdout.trim().split('\n').map((l) => JSON.parse(l) as { key: string; sha256: string; status: string });
    expect(entries.map((e) => e.status)).toEqual(['succeeded', 'succeeded', 'succeeded', 'succeeded']);

    const target = join(dir, 'download');
    const first = await runCli(['results', batchId, '--download', target, '--json'], env(stack));
    expect(first.code, first.stderr).toBe(0);
    expect(JSON.parse(first.stdout)).toMatchObject({ downloaded: 4, alreadyPresent: 0, missing: [], withoutImage: 0, pending: 0 });
    for (const entry of entries) expect(sha256(join(target, entry.key))).toBe(entry.sha256);
    expect(readFileSync(join(target, `${batchId}.results.jsonl`), 'utf8').trim().split('\n')).toHaveLength(4);

    // An interrupted or damaged copy is fetched again; the good ones are not.
    writeFileSync(join(target, 'shelf/item-2.png'), 'half an image');
    rmSync(join(target, 'shelf/item-3.png'));
    const again = await runCli(['results', batchId, '--download', target, '--json'], env(stack));
    expect(JSON.parse(again.stdout)).toMatchObject({ downloaded: 2, alreadyPresent: 2, missing: [] });
    for (const entry of entries) expect(sha256(join(target, entry.key))).toBe(entry.sha256);
    expect(readdirSync(join(target, 'shelf')).filter((f) => f.endsWith('.part'))).toEqual([]);

    // An image gone from storage is reported, not silently skipped.
    rmSync(join(stack.outputDir, 'shelf/item-4.png'));
    rmSync(join(target, 'shelf/item-4.png'));
    const gone = await runCli(['results', batchId, '--download', target], env(stack));
    expect(gone.code).toBe(1);
    expect(gone.stderr).toMatch(/1 missing from storage/);
    expect(gone.stderr).toContain('missing shelf/item-4.png');
  });

  it('batch --watch writes its manifest beside the images, not in the current directory', async () => {
    await using stack = await startStack();
    const csv = join(dir, 'two.csv');
    writeFileSync(csv, 'sku,prompt\nM-1,A brass lamp\nM-2,A glass vase\n');
    const before = readdirSync(REPO_ROOT).filter((f) => f.endsWith('.results.jsonl'));
    const run = await runCli(['batch', csv, '--size', '512*512', '--watch', '--json'], env(stack), BUDGET_MS);
    expect(run.code, run.stderr).toBe(0);
    const outcome = JSON.parse(run.stdout.trim().split('\n').at(-1) as string) as { batchId: string; manifest: string; status: { succeeded: number } };
    expect(outcome.status.succeeded).toBe(2);
    expect(outcome.manifest).toBe(join(stack.outputDir, `${outcome.batchId}.results.jsonl`));
    expect(existsSync(outcome.manifest)).toBe(true);
    expect(readdirSync(REPO_ROOT).filter((f) => f.endsWith('.results.jsonl'))).toEqual(before);
  });

  it('--env-file supplies variables (those already set win), and a missing file stops the command before it runs', async () => {
    await using stack = await startStack({ worker: false });
    const { batchId } = await stack.producer.enqueueMany([{ prompt: 'from a file', size: '512*512' }]);
    const file = join(dir, 'zimage.env');
    writeFileSync(file, `# settings\nREDIS_URL=${stack.redisUrl}\nZIMAGE_PREFIX=${stack.prefix}\n`);
    const fromFile = await runCli(['--env-file', file, 'batches', '--json'], {});
    expect(fromFile.code, fromFile.stderr).toBe(0);
    expect((JSON.parse(fromFile.stdout) as { batches: { batchId: string }[] }).batches.map((b) => b.batchId)).toEqual([batchId]);
    // After the command too, and the environment's own value wins over the file's.
    const overridden = await runCli(['batches', '--json', '--env-file', file], { ZIMAGE_PREFIX: 'someone-else' });
    expect((JSON.parse(overridden.stdout) as { batches: unknown[] }).batches).toEqual([]);

    // Node itself checks an --env-file argument before any of zimage runs (even after the script
    // name), so a missing file stops the process in Node's words, naming the path; nothing runs.
    const missing = await runCli(['--env-file', join(dir, 'nope.env'), 'batches'], {});
    expect(missing.code).not.toBe(0);
    expect(missing.stderr).toContain('nope.env');
    expect(missing.stdout).toBe('');
  });

  it('every command offers --json', async () => {
    const help = await runCli(['--help'], {});
    const commands = [...help.stdout.matchAll(/^ {2}([a-z]+)\b/gm)].map((m) => m[1] as string).filter((c) => c !== 'help');
    expect(commands).toEqual(expect.arrayContaining(['batches', 'cancel', 'results', 'status', 'demo', 'worker', 'api']));
    const leaves: string[][] = [];
    const helps = await inBatches(commands.map((command) => [command, '--help']));
    for (const [i, command] of commands.entries()) {
      const sub = helps[i] as string;
      const children = [...sub.matchAll(/^Commands:\n((?: {2}.*\n?)+)/gm)].flatMap((m) => [...(m[1] as string).matchAll(/^ {2}([a-z]+)\b/gm)].map((c) => c[1] as string));
      if (children.length === 0) leaves.push([command]);
      else for (const child of children.filter((c) => c !== 'help')) leaves.push([command, child]);
    }
    const leafHelps = await inBatches(leaves.map((leaf) => [...leaf, '--help']));
    const missing = leaves.filter((_leaf, i) => !/--json\b/.test(leafHelps[i] as string)).map((leaf) => leaf.join(' '));
    expect(missing).toEqual([]);
    expect(leaves.length).toBeGreaterThan(20);
  });
});
