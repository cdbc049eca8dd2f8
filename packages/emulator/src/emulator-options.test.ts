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

  it('accepts a rate of 1 (every call fails while it is set), ModelNotExist included', () => {
    expect(resolveEmulatorOptions({ faults: { rates: { ModelNotExist: 1 } } }).faults.rates).toEqual({ ModelNotExist: 1 });
    expect(() => resolveEmulatorOptions({ faults: { rates: { ModelNotFound: 1 } as never } })).toThrow(RangeError);
  });

  it('accepts Infinity limits', () => {
    expect(resolveEmulatorOptions({ quota: { rps: Infinity, rpm: Infinity } }).quota.rps).toBe(Infinity);
  });
});
