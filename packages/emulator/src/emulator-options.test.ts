import { describe, expect, it } from 'vitest';
import { EMULATOR_DEFAULTS, effectiveBurstFloor, mergeEmulatorOptions, resolveEmulatorOptions } from './emulator-options.js';

describe('emulator options', () => {
  it('resolves to the documented defaults', () => {
    const options = resolveEmulatorOptions();
    expect(options).toEqual(EMULATOR_DEFAULTS);
    expect(options.quota).toMatchObject({ rpm: 120, rps: 2 });
    expect(options.imageTtlMs).toBe(86_400_000);
    expect(effectiveBurstFloor(options.quota)).toBe(2);
    expect(effectiveBurstFloor({ ...options.quota, rps: 10 })).toBe(10);
    expect(effectiveBurstFloor({ ...options.quota, burst: { ...options.quota.burst, floorPerSecond: 1 } })).toBe(1);
  });

  it('deep-merges patches, replaces arrays and resets explicit undefined to the default', () => {
    const base = resolveEmulatorOptions({ quota: { rps: 5, retryAfterSeconds: 3 } });
    const merged = mergeEmulatorOptions(base, {
      quota: { burst: { factor: 3 }, retryAfterSeconds: undefined },
      faults: { triggerWords: { IPInfringementSuspect: ['mickey'] } },
    });
    expect(merged.quota).toMatchObject({ rps: 5, rpm: 120, burst: { factor: 3, enabled: true }, retryAfterSeconds: undefined });
    expect(merged.faults.triggerWords).toEqual({ DataInspectionFailed: ['zimage-test-unsafe'], IPInfringementSuspect: ['mickey'] });
    expect(base.quota.burst.factor).toBe(2); // the input was not mutated
  });

  it('does not let callers mutate the defaults', () => {
    const options = resolveEmulatorOptions();
    options.quota.rpm = 1;
    expect(EMULATOR_DEFAULTS.quota.rpm).toBe(120);
    expect(Object.isFrozen(EMULATOR_DEFAULTS.quota)).toBe(true);
  });

  it.each([
    { quota: { rps: 0 } },
    { quota: { rpm: -1 } },
    { latency: { minMs: 10, maxMs: 5 } },
    { imageTtlMs: 0 },
    { region: 'mars' as never },
    { port: 70_000 },
    { faults: { rates: { drop: 2 } } },
    { faults: { triggerWords: { DataInspectionFailed: [''] } } },
  ])('rejects %o', (patch) => {
    expect(() => resolveEmulatorOptions(patch)).toThrow(RangeError);
  });

  it('defaults the limiter to the per-second model', () => {
    expect(resolveEmulatorOptions().quota).toMatchObject({
      model: 'per-second',
      windowMs: 60_000,
      bucketSize: 10,
      maxInFlight: 4,
      drift: [{ atMs: 0, rpm: 120 }],
    });
  });

  it.each([
    [{ model: 'leaky' as never }, 'quota.model'],
    [{ windowMs: 0 }, 'quota.windowMs'],
    [{ windowMs: Infinity }, 'quota.windowMs'],
    [{ bucketSize: 0 }, 'quota.bucketSize'],
    [{ bucketSize: 1.5 }, 'quota.bucketSize'],
    [{ maxInFlight: 0 }, 'quota.maxInFlight'],
    [{ maxInFlight: 2.5 }, 'quota.maxInFlight'],
    [{ drift: 'fast' as never }, 'quota.drift'],
    [{ drift: [{ atMs: 0, rpm: 0 }] }, 'quota.drift[0]'],
    [{ drift: [{ atMs: 0, rpm: Infinity }] }, 'quota.drift[0]'],
    [{ drift: [{ atMs: -1, rpm: 5 }] }, 'quota.drift[0]'],
    [{ drift: [{ atMs: 0, rpm: 5 }, { atMs: 'x', rpm: 5 }] as never }, 'quota.drift[1]'],
    [{ drift: [{ atMs: 1000, rpm: 5 }] }, 'quota.drift must start with a step at atMs 0'],
    [{ drift: [{ atMs: 0, rpm: 5 }, { atMs: 2000, rpm: 5 }, { atMs: 2000, rpm: 6 }] }, 'strictly increasing'],
  ])('rejects the limiter option %o, naming %s', (quota, field) => {
    expect(() => resolveEmulatorOptions({ quota })).toThrow(RangeError);
    expect(() => resolveEmulatorOptions({ quota })).toThrow(field);
  });

  it('accepts an empty drift schedule (a constant quota.rpm) and replaces schedules whole', () => {
    expect(resolveEmulatorOptions({ quota: { model: 'drift', drift: [] } }).quota.drift).toEqual([]);
    const base = resolveEmulatorOptions({ quota: { drift: [{ atMs: 0, rpm: 1 }, { atMs: 5, rpm: 2 }] } });
    expect(mergeEmulatorOptions(base, { quota: { drift: [{ atMs: 0, rpm: 3 }] } }).quota.drift).toEqual([{ atMs: 0, rpm: 3 }]);
  });

  it('accepts a rate of 1 (every call fails while it is set), ModelNotExist included', () => {
    expect(resolveEmulatorOptions({ faults: { rates: { ModelNotExist: 1 } } }).faults.rates).toEqual({ ModelNotExist: 1 });
    expect(() => resolveEmulatorOptions({ faults: { rates: { ModelNotFound: 1 } as never } })).toThrow(RangeError);
  });

  it('accepts Infinity limits', () => {
    expect(resolveEmulatorOptions({ quota: { rps: Infinity, rpm: Infinity } }).quota.rps).toBe(Infinity);
  });
});
