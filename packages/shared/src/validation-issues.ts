import type { z } from 'zod';

/** One problem with one field, in words a person can act on. */
export interface FieldIssue {
  /** Dotted path of the field, e.g. `metadata.sku` or `size`; empty for the whole object. */
  field: string;
  message: string;
}

/** `input` is what was validated: it tells a missing field ("is required") from a wrong one. */
export function toFieldIssues(error: z.ZodError, input?: unknown): FieldIssue[] {
  return error.issues.flatMap((issue) => {
    const path = issue.path.map(String);
    // One issue per unknown field, so each is named where it is.
    if (issue.code === 'unrecognized_keys') return issue.keys.map((key) => ({ field: [...path, key].join('.'), message: 'is not a known field' }));
    return [{ field: path.join('.'), message: describeIssue(issue, input) }];
  });
}

function describeIssue(issue: z.core.$ZodIssue, input: unknown): string {
  if (issue.code === 'invalid_type' && input !== undefined && valueAt(input, issue.path) === undefined) return 'is required';
  // A record key that fails its pattern: say which rule, not "Invalid key in record".
  if (issue.code === 'invalid_key') return issue.issues[0]?.message ?? issue.message;
  // zod's own words for sizes ("Too small: expected array to have >=1 items") in ours; a schema's
  // own message is kept.
  if ((issue.code === 'too_small' || issue.code === 'too_big') && /^Too (small|big)/.test(issue.message)) return sizeRule(issue);
  return issue.message;
}

function sizeRule(issue: z.core.$ZodIssueTooSmall | z.core.$ZodIssueTooBig): string {
  const small = issue.code === 'too_small';
  const bound = Number(small ? (issue as z.core.$ZodIssueTooSmall).minimum : (issue as z.core.$ZodIssueTooBig).maximum);
  const inclusive = issue.inclusive !== false;
  const limit = small ? (inclusive ? bound : bound + 1) : inclusive ? bound : bound - 1;
  const word = small ? 'at least' : 'at most';
  switch (issue.origin) {
    case 'array':
    case 'set':
      return small && limit === 1 ? 'must not be empty' : `must have ${word} ${limit} item${limit === 1 ? '' : 's'}`;
    case 'string':
      return small && limit === 1 ? 'must not be empty' : `must be ${word} ${limit} character${limit === 1 ? '' : 's'}`;
    default:
      return `must be ${small ? (inclusive ? 'at least' : 'more than') : inclusive ? 'at most' : 'less than'} ${bound}`;
  }
}

function valueAt(value: unknown, path: readonly PropertyKey[]): unknown {
  let current = value;
  for (const key of path) {
    if (current === null || typeof current !== 'object') return undefined;
    current = (current as Record<PropertyKey, unknown>)[key];
  }
  return current;
}

export function formatFieldIssues(issues: readonly FieldIssue[]): string {
  return issues.map((i) => (i.field ? `${i.field}: ${i.message}` : i.message)).join('; ');
}
