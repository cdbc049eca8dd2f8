import { describe, expect, it } from 'vitest';
import { FAULT_CATALOGUE, isFaultKind } from './fault-catalogue.js';
import { validateRequest } from './validate-request.js';

describe('fault catalogue', () => {
  it('answers ModelNotExist exactly as the emulator rejects an unknown model (400 InvalidParameter "Model not exist.")', () => {
    const rejected = validateRequest({ model: 'wanx-v1', input: {}, parameters: {} });
    expect(rejected.ok).toBe(false);
    const { status, code, message } = FAULT_CATALOGUE.ModelNotExist;
    expect(rejected.ok ? undefined : rejected.error).toEqual({ status, code, message });
    // A check on the request, before any work: it is answered without the generation latency.
    expect(FAULT_CATALOGUE.ModelNotExist.afterLatency).toBe(false);
    expect(isFaultKind('ModelNotExist')).toBe(true);
  });
});
