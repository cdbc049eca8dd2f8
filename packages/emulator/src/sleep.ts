import { setTimeout as delay } from 'node:timers/promises';

/** Waits `ms`; resolves `false` instead if `signal` aborts first (the emulator is closing). */
export async function sleep(ms: number, signal: AbortSignal): Promise<boolean> {
  if (signal.aborted) return false;
  if (ms <= 0) return true;
  try {
    await delay(ms, undefined, { signal });
    return true;
  } catch {
    return false;
  }
}
