/**
 * `zimage schedule apply` as a careless operator meets it: every pipeline validated as its tick
 * would be, each problem once in our words with the pipeline's place and id; `--dry-run` changes
 * nothing; pipelines missing from the file are removed only with `--prune`.
 */
import { randomUUID } from 'node:crypto';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Redis } from 'ioredis';
import { afterAll, describe, expect, inject, it } from 'vitest';
import { runCli } from './support/run-cli.js';

const redisUrl = inject('redisUrl');
const root = mkdtempSync(join(tmpdir(), 'zimage-apply-'));
afterAll(() => rmSync(root, { recursive: true, force: true }));

async function storedIds(prefix: string): Promise<string[]> {
  const redis = new Redis(redisUrl);
  try {
    return Object.keys(await redis.hgetall(`${prefix}:schedules`)).sort();
  } finally {
    redis.disconnect();
  }
}

describe('zimage schedule apply', () => {
  it('refuses a pipeline its tick could not run — a bad size, a CSV that is not there, a template column the CSV lacks — each problem once, changing nothing', async () => {
    const prefix = `s${randomUUID().slice(0, 8)}`;
    const files = join(root, 'files-1');
    mkdirSync(files);
    writeFileSync(join(files, 'products.csv'), 'sku,title\nP-1,a lamp\nP-2,a chair\n');
    const file = join(files, 'pipelines.yaml');
    writeFileSync(
      file,
      `pipelines:
  - id: fine
    every: 1h
    prompts: ["a calm sea"]
  - id: bad-size
    every: 1h
    size: "9*9"
    prompts: ["a", "b", "c", "d"]
  - id: no-csv
    every: 1h
    csv: ./missing.csv
    promptTemplate: "Photo of {title}"
  - id: no-column
    every: 1h
    csv: ./products.csv
    promptTemplate: "Photo of {colour}"
  - id: empty
    every: 1h
    prompts: []
`,
    );
    const env = { REDIS_URL: redisUrl, ZIMAGE_PREFIX: prefix, ZIMAGE_SCHEDULE_FILES_DIR: files, STORAGE_URL: `file:${join(root, 'out')}` };
    const result = await runCli(['schedule', 'apply', file], env);
    expect(result.code).not.toBe(0);
    const out = result.stdout + result.stderr;
    expect(out).toContain('SCHEDULE_INVALID');
    expect(out).toMatch(/pipelines\[1\] \(bad-size\)\.size: /);
    expect(out.match(/bad-size/g)).toHaveLength(1); // one problem, though all four prompts have it
    expect(out).toMatch(/pipelines\[2\] \(no-csv\)\.csv: no such file in ZIMAGE_SCHEDULE_FILES_DIR/);
    expect(out).toMatch(/pipelines\[3\] \(no-column\)\.csv line 2 .*colour/);
    expect(out).not.toMatch(/pipelines\[0\]/);
    expect(out).toMatch(/pipelines\[4\] \(empty\)\.prompts: must not be empty/); // our words, not the library's
    expect(out).not.toMatch(/Too small|expected array/);
    // printed once
    expect(out.match(/no such file in ZIMAGE_SCHEDULE_FILES_DIR/g)).toHaveLength(1);
    expect(await storedIds(prefix)).toEqual([]);
  });

  it('--dry-run prints the plan and changes nothing; pipelines missing from the file are kept, and removed only with --prune', async () => {
    const prefix = `s${randomUUID().slice(0, 8)}`;
    const files = join(root, 'files-2');
    mkdirSync(files);
    const env = { REDIS_URL: redisUrl, ZIMAGE_PREFIX: prefix, ZIMAGE_SCHEDULE_FILES_DIR: files, STORAGE_URL: `file:${join(root, 'out')}` };
    const pipeline = (id: string, prompt = 'a calm sea') => `  - id: ${id}\n    every: 1h\n    prompts: ["${prompt}"]\n`;
    const file = join(files, 'pipelines.yaml');
    writeFileSync(file, `pipelines:\n${pipeline('a')}${pipeline('b')}`);

    const dry = await runCli(['schedule', 'apply', file, '--dry-run'], env);
    expect(dry.code, dry.stderr).toBe(0);
    expect(dry.stdout).toBe('dry run: nothing was changed\ncreate: a, b\n');
    expect(await storedIds(prefix)).toEqual([]);
    expect((await runCli(['schedule', 'apply', file], env)).stdout).toBe('created: a, b\n');

    writeFileSync(file, `pipelines:\n${pipeline('a', 'a stormy sea')}${pipeline('c')}`);
    const plan = await runCli(['schedule', 'apply', file, '--dry-run', '--prune', '--json'], env);
    expect(JSON.parse(plan.stdout)).toEqual({ created: ['c'], updated: ['a'], unchanged: [], removed: ['b'], kept: [], dryRun: true });
    expect(await storedIds(prefix)).toEqual(['a', 'b']);

    const kept = await runCli(['schedule', 'apply', file], env);
    expect(kept.stdout).toBe('created: c\nupdated: a\nkept (not in the file; --prune removes it): b\n');
    expect(await storedIds(prefix)).toEqual(['a', 'b', 'c']);
    expect((await runCli(['schedule', 'apply', file, '--prune'], env)).stdout).toBe('unchanged: a, c\nremoved: b\n');
    expect(await storedIds(prefix)).toEqual(['a', 'c']);
  });
});
