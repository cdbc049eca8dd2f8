import { describe, expect, it } from 'vitest';
import { FaultPicker } from './fault-picker.js';
import { Prng } from './prng.js';

describe('FaultPicker', () => {
  it('plays the script first, in order, with none as a pass', () => {
    const picker = new FaultPicker(new Prng(1), () => ({ InternalError: 1 }));
    picker.enqueue(['drop', 'none', 'gateway502']);
    expect([picker.next(), picker.next(), picker.next(), picker.next()]).toEqual(['drop', undefined, 'gateway502', 'InternalError']);
    expect(picker.pending).toBe(0);
  });

  it('draws faults close to their rates', () => {
    const picker = new FaultPicker(new Prng(7), () => ({ InternalError: 0.1, drop: 0.05 }));
    const counts = new Map<string | undefined, number>();
    for (let i = 0; i < 20_000; i++) {
      const kind = picker.next();
      counts.set(kind, (counts.get(kind) ?? 0) + 1);
    }
    expect((counts.get('InternalError') ?? 0) / 20_000).toBeCloseTo(0.1, 1);
    expect((counts.get('drop') ?? 0) / 20_000).toBeCloseTo(0.05, 1);
    expect([...counts.keys()].sort()).toEqual(['InternalError', 'drop', undefined].sort());
  });

  it('picks a kind at rate 1 for every call: a sustained outage (rates { ModelUnavailable: 1 })', () => {
    for (const kind of ['ModelUnavailable', 'ModelNotExist'] as const) {
      const picker = new FaultPicker(new Prng(11), () => ({ [kind]: 1 }));
      expect(new Set(Array.from({ length: 5_000 }, () => picker.next()))).toEqual(new Set([kind]));
    }
  });

  it('consumes no randomness when no rate is set', () => {
    const rng = new Prng(3);
    const reference = new Prng(3);
    const picker = new FaultPicker(rng, () => ({}));
    expect(picker.next()).toBeUndefined();
    expect(rng.next()).toBe(reference.next());
  });
});
