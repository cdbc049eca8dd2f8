import { describe, expect, it } from 'vitest';
import { parseTenantWeights, shareTargets } from './tenant-weights.js';

describe('parseTenantWeights', () => {
  it('reads tenant=weight pairs', () => {
    expect(parseTenantWeights('acme=3, globex=1')).toEqual({ ok: true, weights: new Map([['acme', 3], ['globex', 1]]) });
    expect(parseTenantWeights('')).toEqual({ ok: true, weights: new Map() });
  });

  it('names each bad pair and the rule it breaks, all at once', () => {
    const parsed = parseTenantWeights('acme=0,glo bex=2,initech,umbrella=1.5,acme=2,hooli=');
    expect(parsed.ok).toBe(false);
    const problems = parsed.ok ? [] : parsed.problems;
    expect(problems).toEqual([
      'pair 1 ("acme=0"): weight must be a whole number from 1 to 1000',
      'pair 2 ("glo bex=2"): tenant must match [A-Za-z0-9_-]{1,64}',
      'pair 3 ("initech"): must be tenant=weight',
      'pair 4 ("umbrella=1.5"): weight must be a whole number from 1 to 1000',
      'pair 6 ("hooli="): weight must be a number',
    ]);
    expect(parseTenantWeights('acme=2,acme=3')).toEqual({ ok: false, problems: ['pair 2 ("acme=3"): tenant acme is given twice'] });
  });
});

describe('shareTargets', () => {
  it('gives each lane with work its weight over the sum of theirs', () => {
    const shares = shareTargets([{ lane: 'a', weight: 2 }, { lane: 'b', weight: 1 }, { lane: 'c', weight: 1 }]);
    expect([...shares]).toEqual([['a', 0.5], ['b', 0.25], ['c', 0.25]]);
    expect(shareTargets([])).toEqual(new Map());
  });
});
