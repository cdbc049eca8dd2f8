import { describe, expect, it } from 'vitest';
import { jobRequestSchema, MAX_METADATA_BYTES, MAX_METADATA_ENTRIES, MAX_SEED } from './job-request.js';

/** Dotted path → message of every issue, straight from zod (independent of `toFieldIssues`). */
function issuesOf(input: unknown): Array<{ field: string; message: string }> {
  const result = jobRequestSchema.safeParse(input);
  if (result.success) return [];
  return result.error.issues.map((issue) => ({ field: issue.path.map(String).join('.'), message: issue.message }));
}

function fieldsOf(input: unknown): string[] {
  return issuesOf(input).map((issue) => issue.field);
}

function parse(input: unknown) {
  const result = jobRequestSchema.safeParse(input);
  if (!result.success) throw new Error(`expected a valid request, got ${JSON.stringify(result.error.issues)}`);
  return result.data;
}

describe('jobRequestSchema: prompt', () => {
  it('trims the prompt', () => {
    expect(parse({ prompt: '  a sitting orange cat \n' }).prompt).toBe('a sitting orange cat');
  });

  it.each(['', '   ', '\n\t '])('rejects the empty or whitespace-only prompt %j', (prompt) => {
    expect(issuesOf({ prompt })).toEqual([{ field: 'prompt', message: 'must not be empty' }]);
  });

  it('rejects a missing prompt', () => {
    expect(fieldsOf({})).toEqual(['prompt']);
  });

  it('rejects a prompt that is not a string', () => {
    expect(issuesOf({ prompt: 42 })).toEqual([{ field: 'prompt', message: 'must be a string' }]);
  });

  it('accepts 800 Chinese characters and keeps every one of them', () => {
    const prompt = '猫'.repeat(800);
    expect(parse({ prompt }).prompt).toBe(prompt);
  });

  it('accepts 800 emoji, counting each as one character', () => {
    const prompt = '😀'.repeat(800);
    expect(parse({ prompt }).prompt).toBe(prompt);
  });

  it('counts the limit after trimming', () => {
    const prompt = '猫'.repeat(800);
    expect(parse({ prompt: `   ${prompt}   ` }).prompt).toBe(prompt);
  });

  it('rejects 801 Chinese characters with a message naming the limit, instead of truncating', () => {
    const issues = issuesOf({ prompt: '猫'.repeat(801) });
    expect(issues).toHaveLength(1);
    expect(issues[0]?.field).toBe('prompt');
    expect(issues[0]?.message).toContain('800');
    expect(issues[0]?.message).toContain('801');
    expect(issues[0]?.message).toMatch(/never cut/);
  });
});

describe('jobRequestSchema: size, aspect and tier', () => {
  it('parses size into width and height', () => {
    expect(parse({ prompt: 'p', size: '1280*720' }).size).toEqual({ width: 1280, height: 720 });
  });

  it('reports an out-of-range size on the size field with the reason', () => {
    const issues = issuesOf({ prompt: 'p', size: '511*512' });
    expect(issues).toHaveLength(1);
    expect(issues[0]?.field).toBe('size');
    expect(issues[0]?.message).toMatch(/between 512×512/);
  });

  it('accepts an aspect with a tier, and an aspect alone', () => {
    expect(parse({ prompt: 'p', aspect: '16:9', tier: '1024' })).toMatchObject({ aspect: '16:9', tier: '1024' });
    expect(parse({ prompt: 'p', aspect: '1:1' }).aspect).toBe('1:1');
  });

  it.each([
    [{ size: '1024*1024', aspect: '1:1' }],
    [{ size: '1024*1024', tier: '1024' }],
    [{ size: '1024*1024', aspect: '1:1', tier: '1280' }],
  ])('reports giving both size and aspect/tier (%o) on size', (fields) => {
    const issues = issuesOf({ prompt: 'p', ...fields });
    expect(issues.map((i) => i.field)).toContain('size');
    expect(issues.find((i) => i.field === 'size')?.message).toMatch(/either size or aspect/);
  });

  it('reports a tier without an aspect on tier', () => {
    expect(issuesOf({ prompt: 'p', tier: '1536' })).toEqual([{ field: 'tier', message: 'tier needs an aspect' }]);
  });

  it.each([
    ['aspect', '5:4'],
    ['tier', '2048'],
  ])('rejects the unknown %s %j, listing the allowed values', (field, value) => {
    const issues = issuesOf({ prompt: 'p', aspect: '1:1', [field]: value });
    expect(issues.map((i) => i.field)).toEqual([field]);
    expect(issues[0]?.message).toMatch(/must be one of/);
  });
});

describe('jobRequestSchema: seed', () => {
  it.each([0, 42, MAX_SEED])('accepts the seed %i', (seed) => {
    expect(parse({ prompt: 'p', seed }).seed).toBe(seed);
  });

  it.each([-1, 2_147_483_648, 1.5, '5', Number.NaN, null])('rejects the seed %j', (seed) => {
    expect(fieldsOf({ prompt: 'p', seed })).toEqual(['seed']);
  });

  it('leaves the seed out when none is given', () => {
    expect(parse({ prompt: 'p' })).not.toHaveProperty('seed');
  });
});

describe('jobRequestSchema: metadata', () => {
  it('accepts keys made of letters, digits, "_", "." and "-"', () => {
    const metadata = { sku: 'A-1', 'product.title': '红色手机壳', Color_2: 'red' };
    expect(parse({ prompt: 'p', metadata }).metadata).toEqual(metadata);
  });

  it.each(['bad key', 'a/b', 'ключ', 'x'.repeat(65), ''])('rejects the metadata key %j, reporting it under metadata', (key) => {
    const issues = issuesOf({ prompt: 'p', metadata: { [key]: 'v' } });
    expect(issues).toHaveLength(1);
    expect(issues[0]?.field).toBe(`metadata.${key}`);
  });

  it.each(['sha256', 'SHA256', 'zimage-job', 'Zimage-anything'])('rejects the reserved metadata key %j', (key) => {
    const issues = issuesOf({ prompt: 'p', metadata: { [key]: 'v' } });
    expect(issues).toEqual([{ field: `metadata.${key}`, message: expect.stringMatching(/reserved/) }]);
  });

  it('rejects a value that is not a string', () => {
    expect(fieldsOf({ prompt: 'p', metadata: { n: 5 } })).toEqual(['metadata.n']);
  });

  it(`accepts ${MAX_METADATA_ENTRIES} entries and rejects one more`, () => {
    const entries = (n: number) => Object.fromEntries(Array.from({ length: n }, (_, i) => [`k${i}`, 'v']));
    expect(Object.keys(parse({ prompt: 'p', metadata: entries(MAX_METADATA_ENTRIES) }).metadata)).toHaveLength(32);
    const issues = issuesOf({ prompt: 'p', metadata: entries(MAX_METADATA_ENTRIES + 1) });
    expect(issues).toEqual([{ field: 'metadata', message: expect.stringContaining('at most 32 entries (got 33)') }]);
  });

  it(`rejects metadata over ${MAX_METADATA_BYTES} bytes in all`, () => {
    const metadata = { a: 'x'.repeat(1000), b: 'y'.repeat(1000) };
    const issues = issuesOf({ prompt: 'p', metadata });
    expect(issues).toEqual([{ field: 'metadata', message: expect.stringContaining(`at most ${MAX_METADATA_BYTES} bytes`) }]);
  });

  it('counts non-ASCII values as they are stored, percent-encoded', () => {
    // "pct-utf8:" (9 bytes) + 9 bytes per Chinese character + the key "title" (5 bytes)
    expect(parse({ prompt: 'p', metadata: { title: '手'.repeat(198) } }).metadata['title']).toHaveLength(198); // 1796 bytes
    expect(fieldsOf({ prompt: 'p', metadata: { title: '手'.repeat(199) } })).toEqual(['metadata']); // 1805 bytes
  });

  it('rejects a single value over 1024 characters', () => {
    expect(fieldsOf({ prompt: 'p', metadata: { a: 'x'.repeat(1025) } })).toContain('metadata.a');
  });
});

describe('jobRequestSchema: webhook', () => {
  it.each(['https://hooks.example.com/zimage', 'http://127.0.0.1:8080/hook'])('accepts the http(s) URL %s', (url) => {
    expect(parse({ prompt: 'p', webhook: { url } }).webhook).toEqual({ url });
  });

  it.each(['ftp://example.com/hook', 'file:///etc/passwd', 'javascript:alert(1)', 'not a url', '/relative/hook'])(
    'rejects the webhook URL %j',
    (url) => {
      expect(issuesOf({ prompt: 'p', webhook: { url } })).toEqual([{ field: 'webhook.url', message: 'must be an absolute http(s) URL' }]);
    },
  );

  it('accepts known event types and rejects unknown ones or an empty list', () => {
    expect(parse({ prompt: 'p', webhook: { url: 'https://h.example', events: ['job.failed'] } }).webhook?.events).toEqual(['job.failed']);
    expect(fieldsOf({ prompt: 'p', webhook: { url: 'https://h.example', events: ['job.started'] } })).toEqual(['webhook.events.0']);
    expect(fieldsOf({ prompt: 'p', webhook: { url: 'https://h.example', events: [] } })).toEqual(['webhook.events']);
  });

  it('rejects an unknown field inside the webhook', () => {
    expect(fieldsOf({ prompt: 'p', webhook: { url: 'https://h.example', secret: 's' } })).toEqual(['webhook']);
  });
});

describe('jobRequestSchema: other fields', () => {
  it('rejects an unknown top-level field, naming it', () => {
    const result = jobRequestSchema.safeParse({ prompt: 'p', negative_prompt: 'blurry' });
    expect(result.success).toBe(false);
    expect(result.error?.issues).toEqual([expect.objectContaining({ code: 'unrecognized_keys', keys: ['negative_prompt'], path: [] })]);
  });

  it.each([0, 50, 100])('accepts the priority %i', (priority) => {
    expect(parse({ prompt: 'p', priority }).priority).toBe(priority);
  });

  it.each([-1, 101, 1.5, '1'])('rejects the priority %j', (priority) => {
    expect(fieldsOf({ prompt: 'p', priority })).toEqual(['priority']);
  });

  it.each(['2026-11-24T06:00:00+08:00', '2026-11-24T06:00:00Z', '2026-11-24T06:00:00.123-05:30'])(
    'accepts the deadline %s (ISO with a time zone)',
    (deadline) => {
      expect(parse({ prompt: 'p', deadline }).deadline).toBe(deadline);
    },
  );

  it.each(['2026-11-24T06:00:00', '2026-11-24', 'tomorrow', '1764000000000', '2026-02-30T06:00:00Z'])(
    'rejects the deadline %j',
    (deadline) => {
      const issues = issuesOf({ prompt: 'p', deadline });
      expect(issues).toHaveLength(1);
      expect(issues[0]?.field).toBe('deadline');
      expect(issues[0]?.message).toMatch(/time zone/);
    },
  );

  it.each(['order-1234', 'a'.repeat(255), 'sku:42/red'])('accepts the idempotency key %j', (idempotencyKey) => {
    expect(parse({ prompt: 'p', idempotencyKey }).idempotencyKey).toBe(idempotencyKey);
  });

  it.each(['', 'has space', 'a'.repeat(256), 'ключ', 'tab\there'])('rejects the idempotency key %j', (idempotencyKey) => {
    expect(new Set(fieldsOf({ prompt: 'p', idempotencyKey }))).toEqual(new Set(['idempotencyKey']));
  });

  it('rejects an empty key and a batch id outside [A-Za-z0-9_-]{1,64}', () => {
    expect(fieldsOf({ prompt: 'p', key: '' })).toEqual(['key']);
    expect(fieldsOf({ prompt: 'p', batchId: 'a/b' })).toEqual(['batchId']);
    expect(parse({ prompt: 'p', batchId: 'batch_2026-11' }).batchId).toBe('batch_2026-11');
  });

  it('applies the defaults: promptExtend false, priority 0, empty metadata, no render cache', () => {
    expect(parse({ prompt: 'p' })).toEqual({ prompt: 'p', promptExtend: false, priority: 0, metadata: {}, cache: false });
  });

  it('rejects a promptExtend that is not a boolean', () => {
    expect(issuesOf({ prompt: 'p', promptExtend: 'true' })).toEqual([{ field: 'promptExtend', message: 'must be true or false' }]);
  });

  it('reports every bad field at once', () => {
    expect(fieldsOf({ prompt: '', seed: -1, priority: 101, deadline: 'soon' }).sort()).toEqual(['deadline', 'priority', 'prompt', 'seed']);
  });
});
