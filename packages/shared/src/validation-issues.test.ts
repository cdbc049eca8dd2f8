import { describe, expect, it } from 'vitest';
import { z } from 'zod';
import { jobRequestSchema } from './job-request.js';
import { formatFieldIssues, toFieldIssues } from './validation-issues.js';

function fieldIssuesOf(input: unknown) {
  const result = jobRequestSchema.safeParse(input);
  if (result.success) throw new Error('expected the request to be invalid');
  return toFieldIssues(result.error, input);
}

describe('toFieldIssues', () => {
  it('says "is required" for a missing prompt', () => {
    expect(fieldIssuesOf({})).toEqual([{ field: 'prompt', message: 'is required' }]);
  });

  it('says what is wrong with a field of the wrong type, not that it is missing', () => {
    expect(fieldIssuesOf({ prompt: 'a', seed: '5' })).toEqual([{ field: 'seed', message: 'must be an integer' }]);
    expect(fieldIssuesOf({ prompt: 42 })).toEqual([{ field: 'prompt', message: 'must be a string' }]);
  });

  it('names the rule a metadata key breaks', () => {
    expect(fieldIssuesOf({ prompt: 'p', metadata: { 'bad key': 'v' } })).toEqual([
      { field: 'metadata.bad key', message: 'metadata keys must match [A-Za-z0-9_.-]{1,64}' },
    ]);
  });

  it('gives nested fields as dotted paths, including a metadata key with a space', () => {
    expect(fieldIssuesOf({ prompt: 'p', metadata: { 'bad key': 'v' } }).map((i) => i.field)).toEqual(['metadata.bad key']);
    expect(fieldIssuesOf({ prompt: 'p', webhook: { url: 'ftp://x' } })).toEqual([{ field: 'webhook.url', message: 'must be an absolute http(s) URL' }]);
    expect(fieldIssuesOf({ prompt: 'p', webhook: { url: 'https://x.example', events: ['nope'] } }).map((i) => i.field)).toEqual(['webhook.events.0']);
  });

  it('keeps the schema message for a rule that failed', () => {
    expect(fieldIssuesOf({ prompt: 'p', tier: '1024' })).toEqual([{ field: 'tier', message: 'tier needs an aspect' }]);
  });

  it('names each unknown top-level field as its own issue', () => {
    expect(fieldIssuesOf({ prompt: 'p', n: 2, watermark: false })).toEqual([
      { field: 'n', message: 'is not a known field' },
      { field: 'watermark', message: 'is not a known field' },
    ]);
  });

  it('names an unknown nested field with its full path', () => {
    expect(fieldIssuesOf({ prompt: 'p', webhook: { url: 'https://x.example', secret: 's' } })).toEqual([
      { field: 'webhook.secret', message: 'is not a known field' },
    ]);
  });
});

describe('toFieldIssues: sizes in our words', () => {
  const issuesOf = (schema: z.ZodType, input: unknown) => {
    const result = schema.safeParse(input);
    if (result.success) throw new Error('expected the value to be invalid');
    return toFieldIssues(result.error, input).map((i) => i.message);
  };

  it('says what the size rule is, not zod\'s "Too small: expected array to have >=1 items"', () => {
    expect(issuesOf(z.array(z.string()).min(1), [])).toEqual(['must not be empty']);
    expect(issuesOf(z.array(z.string()).min(2), ['a'])).toEqual(['must have at least 2 items']);
    expect(issuesOf(z.array(z.string()).max(1), ['a', 'b'])).toEqual(['must have at most 1 item']);
    expect(issuesOf(z.string().min(1), '')).toEqual(['must not be empty']);
    expect(issuesOf(z.string().max(3), 'abcd')).toEqual(['must be at most 3 characters']);
    expect(issuesOf(z.number().min(0), -1)).toEqual(['must be at least 0']);
    expect(issuesOf(z.number().positive(), 0)).toEqual(['must be more than 0']);
    expect(issuesOf(z.number().max(10), 11)).toEqual(['must be at most 10']);
  });

  it('keeps a schema\'s own message', () => {
    expect(issuesOf(z.string().min(1, { error: 'needs a name' }), '')).toEqual(['needs a name']);
  });
});

describe('formatFieldIssues', () => {
  it('joins issues as "field: message", without a prefix for whole-object issues', () => {
    expect(
      formatFieldIssues([
        { field: 'prompt', message: 'is required' },
        { field: '', message: 'unknown field(s): n' },
        { field: 'metadata.sku', message: 'is reserved' },
      ]),
    ).toBe('prompt: is required; unknown field(s): n; metadata.sku: is reserved');
  });

  it('gives an empty string for no issues', () => {
    expect(formatFieldIssues([])).toBe('');
  });
});
