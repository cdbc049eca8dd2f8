import { describe, expect, it } from 'vitest';
import { createLimiter, limiterKey } from './create-limiter.js';
import type { LimiterModel } from './emulator-options.js';
import { LIMITER_MODELS, resolveEmulatorOptions } from './emulator-options.js';

describe('createLimiter', () => {
  it.each(LIMITER_MODELS)('builds the %s model', (model: LimiterModel) => {
    const options = resolveEmulatorOptions({ quota: { model } });
    const limiter = createLimiter(() => options);
    expect(limiter.model).toBe(model);
    expect(limiter.startedAt).toBeUndefined();
    expect(limiter.tryAccept(5)).toBeUndefined();
    expect(limiter.startedAt).toBe(5);
  });

  it('keys a limiter by its model and the fields it takes at construction only', () => {
    const key = (quota: object): string => limiterKey(resolveEmulatorOptions({ quota }).quota);
    expect(key({ windowMs: 1000 })).toBe(key({ windowMs: 2000 })); // per-second ignores windowMs
    expect(key({ rpm: 5 })).toBe(key({ rpm: 6 }));
    expect(key({ model: 'fixed-window', windowMs: 1000 })).not.toBe(key({ model: 'fixed-window', windowMs: 2000 }));
    expect(key({ model: 'fixed-window' })).not.toBe(key({ model: 'sliding-log' }));
    expect(key({ model: 'token-bucket', bucketSize: 1 })).not.toBe(key({ model: 'token-bucket', bucketSize: 2 }));
    expect(key({ model: 'token-bucket', rpm: 1 })).toBe(key({ model: 'token-bucket', rpm: 2 }));
    expect(key({ model: 'concurrency', maxInFlight: 1 })).not.toBe(key({ model: 'concurrency', maxInFlight: 2 }));
    expect(key({ model: 'drift', drift: [{ atMs: 0, rpm: 1 }] })).not.toBe(key({ model: 'drift', drift: [{ atMs: 0, rpm: 2 }] }));
  });
});
