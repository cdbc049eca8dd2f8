import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomUUID } from 'node:crypto';
import { createServer, type AddressInfo } from 'node:net';
import { afterAll, describe, expect, it } from 'vitest';
import { inject } from 'vitest';
import { Redis } from 'ioredis';
import { runCli } from './support/run-cli.js';

const redisUrl = inject('redisUrl');
const dir = mkdtempSync(join(tmpdir(), 'zimage-cli-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

async function queuedJobs(prefix: string): Promise<number> {
  const redis = new Redis(redisUrl);
  try {
    return (await redis.keys(`${prefix}:generate:*`)).filter((k) => /:generate:[0-9a-f-]{36}$/.test(k) || /:generate:idem-/.test(k)).length;
  } finally {
    redis.disconnect();
  }
}

function env(prefix: string) {
  return { REDIS_URL: redisUrl, ZIMAGE_PREFIX: prefix };
}

describe('zimage command line', () => {
  it('enqueue prints a job id, and rejects bad input naming the field, enqueuing nothing', async () => {
    const prefix = `c${randomUUID().slice(0, 8)}`;
    const ok = await runCli(['enqueue', '--prompt', 'A red chair', '--size', '512x512', '--metadata', 'sku=C-1', '--key', 'chairs/{sku}.png'], env(prefix));
    expect(ok.code, ok.stderr).toBe(0);
    expect(ok.stdout.trim()).toMatch(/^[0-9a-f-]{36}$/);

    const cases: [string[], RegExp][] = [
      [['--prompt', '   '], /prompt: must not be empty/],
      [['--prompt', 'x'.repeat(801)], /prompt: must be at most 800 characters/],
      [['--prompt', 'x', '--size', '100*100'], /size: total pixels 100×100 = 10000 must be between/],
      [['--prompt', 'x', '--seed', '-1'], /seed: must be between 0 and 2147483647/],
      [['--prompt', 'x', '--seed', '1.5'], /--seed must be a whole number/],
      [['--prompt', 'x', '--key', '../etc/{sku}.png', '--metadata', 'sku=a'], /key: .*\.\./],
      [['--prompt', 'x', '--metadata', 'novalue'], /--metadata must look like key=value/],
    ];
    for (const [args, message] of cases) {
      const result = await runCli(['enqueue', ...args], env(prefix));
      expect(result.code, `${args.join(' ')}\n${result.stderr}`).toBe(2);
      expect(result.stderr).toMatch(message);
    }
    expect(await queuedJobs(prefix)).toBe(1);
  });

  it('batch reports every bad row with its line and enqueues nothing; --skip-invalid enqueues the rest', async () => {
    const prefix = `c${randomUUID().slice(0, 8)}`;
    const file = join(dir, 'products.csv');
    writeFileSync(
      file,
      [
        'sku,title,color,seed,size',
        'A-1,Mug,white,1,512*512',
        'A-2,Bowl,,2,512*512', // empty color: the template cannot be filled
        'A-3,Plate,blue,x,512*512', // bad seed
        'A-4,"Tea ""pot""",green,4,99*99', // too small
        'A-5,Cup,red,5,512*512',
      ].join('\n'),
    );
    const args = ['batch', file, '--prompt-template', 'Studio photo of {title} in {color}', '--key', 'catalogue/{sku}.png'];
    const rejected = await runCli(args, env(prefix));
    expect(rejected.code).toBe(2);
    expect(rejected.stderr).toMatch(/3 of 5 rows are invalid; nothing was enqueued/);
    expect(rejected.stderr).toMatch(/line 3: prompt: --prompt-template: placeholder \{color\} has no value \(column "color" is empty in this row\)/);
    expect(rejected.stderr).toMatch(/line 4: seed: must be a whole number \(got "x"\)/);
    expect(rejected.stderr).toMatch(/line 5: size: total pixels/);
    expect(await queuedJobs(prefix)).toBe(0);

    const skipped = await runCli([...args, '--skip-invalid', '--rejected', join(dir, 'rejected.jsonl')], env(prefix));
    expect(skipped.code, skipped.stderr).toBe(0);
    expect(skipped.stdout.trim()).toMatch(/^b_[0-9a-f]{20}$/);
    expect(skipped.stderr).toMatch(/Enqueued 2 of 5 rows/);
    const lines = readFileSync(join(dir, 'rejected.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l) as { line: number });
    expect(lines.map((l) => l.line)).toEqual([3, 4, 5]);
    expect(await queuedJobs(prefix)).toBe(2);

    const missing = await runCli(['batch', join(dir, 'nope.csv')], env(prefix));
    expect(missing.code).toBe(2);
    expect(missing.stderr).toMatch(/BATCH_INVALID: Cannot read .*nope\.csv: no such file/);
    expect(missing.stderr).not.toMatch(/\n\s+at /); // a message, not a stack trace

    const status = await runCli(['status', skipped.stdout.trim()], env(prefix));
    expect(status.code, status.stderr).toBe(0);
    expect(status.stdout).toMatch(/total 2 · succeeded 0 · failed 0 · expired 0 · cancelled 0 · pending 2/);
  });

  it('batch names the format of a file it cannot read (an .xlsx, a workbook renamed .csv, a .json array) and enqueues nothing', async () => {
    const prefix = `c${randomUUID().slice(0, 8)}`;
    // The first bytes of any .xlsx: a ZIP archive's local file header.
    const workbook = Buffer.concat([Buffer.from([0x50, 0x4b, 0x03, 0x04, 0x14, 0x00]), Buffer.from('[Content_Types].xml'), Buffer.alloc(64)]);
    writeFileSync(join(dir, 'catalogue.xlsx'), workbook);
    writeFileSync(join(dir, 'renamed.csv'), workbook);
    writeFileSync(join(dir, 'items.json'), JSON.stringify([{ prompt: 'a cat' }]));
    const cases: [string, RegExp][] = [
      ['catalogue.xlsx', /line 1: an Excel workbook \(\.xlsx\) is not read; save the sheet as CSV \(UTF-8\)/],
      ['renamed.csv', /line 1: not a CSV file: it is a ZIP archive \(an \.xlsx or \.ods workbook\?\)/],
      ['items.json', /line 1: a JSON file \(\.json\) is not read; give JSONL/],
    ];
    for (const [name, message] of cases) {
      const result = await runCli(['batch', join(dir, name), '--prompt-template', 'Photo of {title}'], env(prefix));
      expect(result.code, result.stderr).toBe(2);
      expect(result.stderr).toMatch(message);
      expect(result.stderr).not.toMatch(/0 rows/);
    }
    expect(await queuedJobs(prefix)).toBe(0);
  });

  it('ends every failure in the catalogue shape: code, message, what to do — usage mistakes, bad input, missing files and ids — without a stack trace', async () => {
    const prefix = `c${randomUUID().slice(0, 8)}`;
    const cases: [string[], number, RegExp][] = [
      [['batch'], 2, /^error USAGE_INVALID: missing required argument 'file'\n {2}→ Run `zimage --help` \(or `zimage COMMAND --help`\)/],
      [['enqueue', '--prompt', 'x', '--bogus'], 2, /^error USAGE_INVALID: unknown option '--bogus'\n {2}→ /],
      [['nosuch'], 2, /^error USAGE_INVALID: unknown command 'nosuch'\n {2}→ /],
      [['enqueue', '--prompt', 'x', '--size', '1*1'], 2, /^error REQUEST_INVALID: .*size.*\n( {2}- .*\n)* {2}→ Fix the field named in the error; nothing was enqueued\./],
      [['batch', join(dir, 'no-such-file.csv')], 2, /^error BATCH_INVALID: Cannot read .*no-such-file\.csv: no such file\n {2}→ Check the path/],
      [['status', 'b_nosuch'], 2, /^error JOB_NOT_FOUND: no batch or job with id b_nosuch\n {2}→ Check the id/],
    ];
    for (const [args, code, shape] of cases) {
      const result = await runCli(args, env(prefix));
      expect(result.code, `${args.join(' ')}\n${result.stderr}`).toBe(code);
      expect(result.stderr).toMatch(shape);
      expect(result.stderr).not.toMatch(/^\s+at /m);
      expect(result.stderr).not.toMatch(/Usage: zimage/);
    }
  });

  it('reports every configuration problem at once, naming each variable, and a down Redis by REDIS_URL', async () => {
    const config = await runCli(['worker'], { ZIMAGE_RPM: 'fast', LOG_LEVEL: 'loud', STORAGE_URL: 'ftp://x', DASHSCOPE_API_KEY: 'sk-xyz' });
    expect(config.code).toBe(2);
    for (const name of ['ZIMAGE_RPM', 'LOG_LEVEL', 'STORAGE_URL', 'DASHSCOPE_API_KEY']) expect(config.stderr).toContain(name);
    expect(config.stderr).not.toContain('sk-xyz');

    const down = await runCli(['enqueue', '--prompt', 'x'], { REDIS_URL: 'redis://127.0.0.1:1' });
    expect(down.code).toBe(3);
    expect(down.stderr).toMatch(/REDIS_UNAVAILABLE: Cannot reach Redis at REDIS_URL=redis:\/\/127\.0\.0\.1:1/);
  });

  it('zimage emulator refuses a port in use and an impossible --latency in our words, without a stack trace', async () => {
    const taken = createServer();
    await new Promise<void>((resolve) => taken.listen(0, '127.0.0.1', resolve));
    const port = (taken.address() as AddressInfo).port;
    try {
      const busy = await runCli(['emulator', '--port', String(port)], {});
      expect(busy.code).toBe(2);
      expect(busy.stderr).toBe(`error CONFIG_INVALID: --port ${port}: 127.0.0.1:${port} is already in use\n  → Choose another --port (0 picks a free one), or stop what listens there.\n`);
    } finally {
      taken.close();
    }
    const latency = await runCli(['emulator', '--latency', '5-1'], {});
    expect(latency.code).toBe(2);
    expect(latency.stderr).toBe('error REQUEST_INVALID: --latency: MIN must be at most MAX (got "5-1")\n  → Fix the option named in the error (zimage emulator --help lists them).\n');
  });
});
