import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { detectFormat, readBatchRows, rowToRequest, type BatchRow, type RowMapping, type UnreadableRow } from './batch-file.js';

const row = (fields: Record<string, unknown>, line = 2): BatchRow => ({ line, fields });

function accepted(fields: Record<string, unknown>, mapping: RowMapping = {}) {
  const outcome = rowToRequest(row(fields), mapping);
  if (!outcome.ok) throw new Error(`expected the row to map, got ${JSON.stringify(outcome.issues)}`);
  return outcome;
}

function rejected(fields: Record<string, unknown>, mapping: RowMapping = {}) {
  const outcome = rowToRequest(row(fields), mapping);
  if (outcome.ok) throw new Error('expected issues');
  return outcome.issues;
}

describe('rowToRequest', () => {
  const template = { promptTemplate: 'Studio photo of {title} in {color}' };

  it('fills the prompt template from the columns', () => {
    const { request } = accepted({ sku: 'A1', title: 'a mug', color: 'red' }, template);
    expect(request.prompt).toBe('Studio photo of a mug in red');
  });

  it('names a column the template needs but the row does not have', () => {
    const found = rejected({ sku: 'A1', title: 'a mug' }, template);
    expect(found).toEqual([{ field: 'prompt', message: expect.stringContaining('"color"') }]);
    expect(found[0]?.message).toContain('--prompt-template');
  });

  it('treats an empty column as missing for the template', () => {
    expect(rejected({ title: 'a mug', color: '' }, template)).toEqual([{ field: 'prompt', message: expect.stringContaining('{color}') }]);
  });

  it('uses a prompt column when there is no template', () => {
    expect(accepted({ prompt: 'a cat' }).request.prompt).toBe('a cat');
  });

  it('asks for a prompt when there is neither a prompt column nor a template', () => {
    expect(rejected({ sku: 'A1' })).toEqual([{ field: 'prompt', message: expect.stringContaining('is required') }]);
  });

  it.each([
    ['12', 12],
    [' 12 ', 12],
    ['0', 0],
    ['-1', -1], // converted here; the schema then rejects it
  ])('converts the seed column %j to %i', (seed, expected) => {
    expect(accepted({ prompt: 'p', seed }).request.seed).toBe(expected);
  });

  it.each(['x', '1.5', '1e3', '12abc'])('reports the seed %j, naming the column', (seed) => {
    expect(rejected({ prompt: 'p', Seed: seed })).toEqual([{ field: 'Seed', message: `must be a whole number (got "${seed}")` }]);
  });

  it('converts the priority column like the seed', () => {
    expect(accepted({ prompt: 'p', priority: '80' }).request.priority).toBe(80);
    expect(rejected({ prompt: 'p', priority: 'high' }).map((i) => i.field)).toEqual(['priority']);
  });

  it.each([
    ['yes', true],
    ['YES', true],
    ['true', true],
    ['1', true],
    ['no', false],
    ['False', false],
    ['0', false],
  ])('reads prompt_extend %j as %s', (value, expected) => {
    expect(accepted({ prompt: 'p', prompt_extend: value }).request.promptExtend).toBe(expected);
  });

  it('reports prompt_extend "maybe", naming the column', () => {
    expect(rejected({ prompt: 'p', prompt_extend: 'maybe' })).toEqual([{ field: 'prompt_extend', message: 'must be true or false (got "maybe")' }]);
  });

  it('reads the render cache columns, booleans like prompt_extend', () => {
    const { request } = accepted({ prompt: 'p', seed: '3', cache: 'yes', cache_namespace: 'spring', cache_ttl: '7d', cache_refresh: '0' });
    expect(request).toMatchObject({ seed: 3, cache: true, cacheNamespace: 'spring', cacheTtl: '7d', cacheRefresh: false });
    expect(rejected({ prompt: 'p', cache: 'sometimes' })).toEqual([{ field: 'cache', message: 'must be true or false (got "sometimes")' }]);
  });

  it('reports every bad column of a row at once', () => {
    expect(rejected({ seed: 'x', prompt_extend: 'maybe' }).map((i) => i.field)).toEqual(['seed', 'prompt_extend', 'prompt']);
  });

  it('maps known columns whatever their case', () => {
    const { request } = accepted({ Prompt: 'p', SIZE: '1024*1024', Idempotency_Key: 'k1', promptExtend: 'yes', Deadline: '2026-12-01T00:00:00Z' });
    expect(request).toMatchObject({ prompt: 'p', size: '1024*1024', idempotencyKey: 'k1', promptExtend: true, deadline: '2026-12-01T00:00:00Z' });
  });

  it('skips empty known columns', () => {
    const { request } = accepted({ prompt: 'p', seed: '', size: '', aspect: '' });
    expect(request).not.toHaveProperty('seed');
    expect(request).not.toHaveProperty('size');
    expect(request).not.toHaveProperty('aspect');
  });

  it('turns other columns into metadata, skipping invalid key names and empty values', () => {
    const { request, templateValues } = accepted({ sku: 'A1', title: 'a mug', 'product title': 'x', 'a/b': 'y', color: '' }, { promptTemplate: '{title}' });
    expect(request.metadata).toEqual({ sku: 'A1', title: 'a mug' });
    expect(templateValues).toMatchObject({ 'product title': 'x', 'a/b': 'y' });
  });

  it('does not copy known columns into metadata', () => {
    expect(accepted({ prompt: 'p', seed: '3', sku: 'A1' }).request.metadata).toEqual({ sku: 'A1' });
  });

  it('sets no metadata when no column qualifies', () => {
    expect(accepted({ prompt: 'p' }).request).not.toHaveProperty('metadata');
  });

  it('merges a JSONL metadata object and stringifies non-string values', () => {
    const { request, templateValues } = accepted({ prompt: 'p', metadata: { sku: 'A1', qty: 3 }, batch: 7 });
    expect(request.metadata).toEqual({ sku: 'A1', qty: '3', batch: '7' });
    expect(templateValues['sku']).toBe('A1');
  });

  it('keeps non-string JSONL values of known fields as they are', () => {
    expect(accepted({ prompt: 'p', seed: 12, prompt_extend: true }).request).toMatchObject({ seed: 12, promptExtend: true });
  });

  it('applies the mapping defaults, which the row overrides', () => {
    const { request } = accepted({ prompt: 'p', size: '1280*720' }, { defaults: { size: '1024*1024', priority: 10, promptExtend: true } });
    expect(request).toMatchObject({ size: '1280*720', priority: 10, promptExtend: true });
  });

  it("uses the key template unless the row has a key column", () => {
    expect(accepted({ prompt: 'p' }, { keyTemplate: 'catalogue/{sku}.png' }).request.key).toBe('catalogue/{sku}.png');
    expect(accepted({ prompt: 'p', key: 'own/{id}.png' }, { keyTemplate: 'catalogue/{sku}.png' }).request.key).toBe('own/{id}.png');
  });

  it("uses the first column's value as the row key by default", () => {
    expect(accepted({ sku: 'A1', prompt: 'p' }).rowKey).toBe('A1');
    expect(accepted({ id: 42, prompt: 'p' }).rowKey).toBe('42');
  });

  it('uses the rowKeyColumn when given', () => {
    expect(accepted({ sku: 'A1', prompt: 'p', ean: '4006381333931' }, { rowKeyColumn: 'ean' }).rowKey).toBe('4006381333931');
    expect(accepted({ sku: 'A1', prompt: 'p' }, { rowKeyColumn: 'missing' }).rowKey).toBeUndefined();
  });

  it('caps the row key at 200 characters', () => {
    expect(accepted({ sku: 'x'.repeat(300), prompt: 'p' }).rowKey).toHaveLength(200);
  });
});

describe('detectFormat', () => {
  it.each([
    ['rows.jsonl', 'jsonl'],
    ['rows.NDJSON', 'jsonl'],
    ['rows.csv', 'csv'],
    ['rows.txt', 'csv'],
    ['rows.jsonl.csv', 'csv'],
  ] as const)('reads %s as %s', (path, format) => {
    expect(detectFormat(path)).toBe(format);
  });
});

describe('readBatchRows', () => {
  const dir = mkdtempSync(join(tmpdir(), 'zimage-batch-file-'));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  async function read(name: string, content: string) {
    const path = join(dir, name);
    writeFileSync(path, content);
    const rows: Array<BatchRow | UnreadableRow> = [];
    for await (const r of readBatchRows(path)) rows.push(r);
    return rows;
  }

  it('gives each CSV row with its 1-based start line, including after a quoted multi-line field', async () => {
    const rows = await read('multi-line.csv', 'sku,title,color\nA1,Mug,red\nA2,"Multi\nline title",blue\nA3,Plate,green\n');
    expect(rows).toEqual([
      { line: 2, fields: { sku: 'A1', title: 'Mug', color: 'red' } },
      { line: 3, fields: { sku: 'A2', title: 'Multi\nline title', color: 'blue' } },
      { line: 5, fields: { sku: 'A3', title: 'Plate', color: 'green' } },
    ]);
  });

  it('strips a UTF-8 byte order mark from the header', async () => {
    expect(await read('bom.csv', '\uFEFFsku,prompt\nA1,a cat\n')).toEqual([{ line: 2, fields: { sku: 'A1', prompt: 'a cat' } }]);
  });

  it('reads CRLF files', async () => {
    expect(await read('crlf.csv', 'sku,prompt\r\nA1,a cat\r\nA2,a dog\r\n')).toEqual([
      { line: 2, fields: { sku: 'A1', prompt: 'a cat' } },
      { line: 3, fields: { sku: 'A2', prompt: 'a dog' } },
    ]);
  });

  it('yields an error row naming the line of a CSV row with the wrong column count', async () => {
    const rows = await read('columns.csv', 'sku,title,color\nA1,Mug,red\nA2,Cup\n');
    expect(rows).toEqual([
      { line: 2, fields: { sku: 'A1', title: 'Mug', color: 'red' } },
      { line: 3, error: 'CSV: has 2 fields; the header has 3' },
    ]);
  });

  it('keeps reading after a row with the wrong field count', async () => {
    const rows = await read('columns2.csv', 'a,b\n1,2\n3,4,5\n6,7\n');
    expect(rows).toEqual([
      { line: 2, fields: { a: '1', b: '2' } },
      { line: 3, error: 'CSV: has 3 fields; the header has 2' },
      { line: 4, fields: { a: '6', b: '7' } },
    ]);
  });

  it('counts blank lines and CRLF line breaks inside quotes when giving start lines', async () => {
    const blank = await read('blank.csv', 'sku,title,color\nA1,Mug,red\n\nA2,Cup,blue\n\n\nA3,Plate,green\n');
    expect(blank.map((r) => r.line)).toEqual([2, 4, 7]);
    const crlf = await read('crlf.csv', 'sku,title\r\nA1,Mug\r\nA2,"x\r\ny"\r\nA3,z\r\n');
    expect(crlf.map((r) => r.line)).toEqual([2, 3, 5]);
  });

  it('refuses a header with an empty or repeated column name, for the whole file', async () => {
    expect(await read('header.csv', 'sku,sku\n1,2\n')).toEqual([{ line: 1, error: expect.stringMatching(/"sku" twice/), fatal: true }]);
  });

  it('yields an error row for an unclosed quote', async () => {
    const rows = await read('quote.csv', 'sku,title\nA1,"unterminated\n');
    expect(rows).toEqual([{ line: expect.any(Number), error: expect.stringMatching(/^CSV: .*quote.*the rest of the file cannot be read$/i), fatal: true }]);
  });

  it('gives each JSONL object with its line, skipping blank lines and reporting bad ones by line', async () => {
    const rows = await read('rows.jsonl', '{"prompt":"a cat","seed":3}\n\n   \n{not json}\n[1,2]\n"text"\n{"prompt":"a dog","metadata":{"sku":"A2"}}\n');
    expect(rows).toEqual([
      { line: 1, fields: { prompt: 'a cat', seed: 3 } },
      { line: 4, error: expect.stringMatching(/^not valid JSON/) },
      { line: 5, error: 'each line must be a JSON object' },
      { line: 6, error: 'each line must be a JSON object' },
      { line: 7, fields: { prompt: 'a dog', metadata: { sku: 'A2' } } },
    ]);
  });

  it('counts CRLF JSONL lines once each', async () => {
    const rows = await read('crlf.jsonl', '{"prompt":"a"}\r\n\r\n{"prompt":"b"}\r\n');
    expect(rows).toEqual([
      { line: 1, fields: { prompt: 'a' } },
      { line: 3, fields: { prompt: 'b' } },
    ]);
  });

  it('reads a file in the format given, whatever its name', async () => {
    const path = join(dir, 'rows.txt');
    writeFileSync(path, '{"prompt":"a"}\n');
    const rows = [];
    for await (const r of readBatchRows(path, 'jsonl')) rows.push(r);
    expect(rows).toEqual([{ line: 1, fields: { prompt: 'a' } }]);
  });
});
