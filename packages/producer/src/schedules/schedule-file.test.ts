import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { confineSchedulePath, copyScheduleFile } from './schedule-file.js';

describe('confineSchedulePath: a schedule CSV names a file inside ZIMAGE_SCHEDULE_FILES_DIR', () => {
  const dir = '/srv/zimage/schedules';

  it('refuses every file source while the folder is not configured', () => {
    expect(confineSchedulePath(undefined, 'products.csv')).toEqual({ problem: expect.stringContaining('ZIMAGE_SCHEDULE_FILES_DIR') });
  });

  it('through the API: a relative path inside the folder, stored as given; absolute paths and .. escapes refused', () => {
    expect(confineSchedulePath(dir, 'products.csv')).toEqual({ path: 'products.csv' });
    expect(confineSchedulePath(dir, './daily/../daily/items.csv')).toEqual({ path: join('daily', 'items.csv') });
    expect(confineSchedulePath(dir, '/srv/app/.env')).toEqual({ problem: expect.stringContaining('relative') });
    expect(confineSchedulePath(dir, '/srv/zimage/schedules/products.csv')).toEqual({ problem: expect.stringContaining('relative') });
    expect(confineSchedulePath(dir, '../app/.env')).toEqual({ problem: expect.stringContaining('inside') });
    expect(confineSchedulePath(dir, 'a/../../x.csv')).toEqual({ problem: expect.stringContaining('inside') });
    expect(confineSchedulePath(dir, '.')).toEqual({ problem: expect.stringContaining('inside') });
    expect(confineSchedulePath(dir, 'a\0b')).toEqual({ problem: expect.stringContaining('NUL') });
  });

  it('from a pipelines file: relative to the file\'s folder (or absolute), stored relative to the folder', () => {
    expect(confineSchedulePath(dir, './products.csv', dir)).toEqual({ path: 'products.csv' });
    expect(confineSchedulePath(dir, 'daily/items.csv', '/srv/zimage/schedules')).toEqual({ path: join('daily', 'items.csv') });
    expect(confineSchedulePath(dir, '../schedules/products.csv', '/srv/zimage/other')).toEqual({ path: 'products.csv' });
    expect(confineSchedulePath(dir, '/srv/zimage/schedules/products.csv', '/anywhere')).toEqual({ path: 'products.csv' });
    expect(confineSchedulePath(dir, './products.csv', '/home/me/pipelines')).toEqual({ problem: expect.stringContaining('inside') });
    expect(confineSchedulePath(dir, '/etc/passwd', dir)).toEqual({ problem: expect.stringContaining('inside') });
  });
});

describe('copyScheduleFile: the tick reads only regular files inside the folder, capped', () => {
  let root: string;
  let dir: string;
  let out: string;
  beforeEach(() => {
    root = mkdtempSync(join(tmpdir(), 'zimage-schedule-file-'));
    dir = join(root, 'schedules');
    out = join(root, 'out');
    mkdirSync(dir);
    mkdirSync(out);
    writeFileSync(join(dir, 'products.csv'), 'sku,title\nP-1,a lamp\n');
    writeFileSync(join(root, 'secret.env'), 'DASHSCOPE_API_KEY=sk-secret\n');
  });
  afterEach(() => rmSync(root, { recursive: true, force: true }));

  it('copies a regular file inside the folder', async () => {
    await copyScheduleFile(dir, 'products.csv', join(out, 'tick.csv'));
    expect(readFileSync(join(out, 'tick.csv'), 'utf8')).toBe('sku,title\nP-1,a lamp\n');
  });

  it('refuses a symbolic link that leads outside the folder, and copies nothing', async () => {
    symlinkSync(join(root, 'secret.env'), join(dir, 'innocent.csv'));
    await expect(copyScheduleFile(dir, 'innocent.csv', join(out, 'tick.csv'))).rejects.toMatchObject({ code: 'SCHEDULE_INVALID', message: expect.stringContaining('outside') });
    expect(() => readFileSync(join(out, 'tick.csv'))).toThrow();
  });

  it('follows a symbolic link that stays inside the folder', async () => {
    symlinkSync(join(dir, 'products.csv'), join(dir, 'latest.csv'));
    await copyScheduleFile(dir, 'latest.csv', join(out, 'tick.csv'));
    expect(readFileSync(join(out, 'tick.csv'), 'utf8')).toContain('P-1');
  });

  it('refuses a FIFO at once instead of blocking on it', async () => {
    execFileSync('mkfifo', [join(dir, 'pipe.csv')]);
    await expect(copyScheduleFile(dir, 'pipe.csv', join(out, 'tick.csv'))).rejects.toMatchObject({ code: 'SCHEDULE_INVALID', message: expect.stringContaining('not a regular file') });
  });

  it('refuses a folder, a missing file and a file over the cap', async () => {
    mkdirSync(join(dir, 'sub'));
    await expect(copyScheduleFile(dir, 'sub', join(out, 'a.csv'))).rejects.toMatchObject({ message: expect.stringContaining('not a regular file') });
    await expect(copyScheduleFile(dir, 'missing.csv', join(out, 'b.csv'))).rejects.toMatchObject({ message: expect.stringContaining('no such file') });
    await expect(copyScheduleFile(dir, 'products.csv', join(out, 'c.csv'), 10)).rejects.toMatchObject({ code: 'SCHEDULE_INVALID', message: expect.stringContaining('over the limit of 10') });
  });

  it('refuses every path when the folder is not configured, or does not exist', async () => {
    await expect(copyScheduleFile(undefined, 'products.csv', join(out, 'a.csv'))).rejects.toMatchObject({ message: expect.stringContaining('ZIMAGE_SCHEDULE_FILES_DIR') });
    await expect(copyScheduleFile(join(root, 'nope'), 'products.csv', join(out, 'b.csv'))).rejects.toMatchObject({ message: expect.stringContaining('no such folder') });
  });
});
