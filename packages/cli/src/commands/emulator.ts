import { AppError } from '@zimage/shared';
import type { DriftStep, LimiterModel } from '@zimage/emulator';
import { LIMITER_MODELS, createEmulator } from '@zimage/emulator';
import { parseInteger } from '../parse-options.js';

const OPTION_ACTION = 'Fix the option named in the error (zimage emulator --help lists them).';

export interface EmulatorFlags {
  json?: boolean;
  port: string;
  host: string;
  rpm?: string;
  rps?: string;
  latency?: string;
  burstGuard: boolean;
  retryAfter?: string;
  region?: string;
  limiter?: string;
  windowMs?: string;
  bucketSize?: string;
  maxInFlight?: string;
  drift?: string;
}

/** `zimage emulator --port N`: the local DashScope stand-in, until SIGINT/SIGTERM. */
export async function emulatorCommand(flags: EmulatorFlags): Promise<number> {
  const latency = flags.latency ? /^(\d+)-(\d+)$/.exec(flags.latency) : undefined;
  if (flags.latency && !latency) throw new AppError('REQUEST_INVALID', `--latency must look like MIN-MAX in ms (got "${flags.latency}")`, { action: OPTION_ACTION });
  if (flags.region && flags.region !== 'singapore' && flags.region !== 'beijing') {
    throw new AppError('REQUEST_INVALID', `--region must be singapore or beijing (got "${flags.region}")`, { action: OPTION_ACTION });
  }
  const port = parseInteger('--port', flags.port) ?? 0;
  if (port < 0 || port > 65535) throw new AppError('REQUEST_INVALID', `--port must be between 0 and 65535 (got ${port})`, { action: OPTION_ACTION });
  const rpm = parseInteger('--rpm', flags.rpm);
  if (rpm !== undefined && rpm < 1) throw new AppError('REQUEST_INVALID', '--rpm must be at least 1', { action: OPTION_ACTION });
  const rps = parseInteger('--rps', flags.rps);
  if (rps !== undefined && rps < 1) throw new AppError('REQUEST_INVALID', '--rps must be at least 1', { action: OPTION_ACTION });
  const retryAfter = parseInteger('--retry-after', flags.retryAfter);
  const limiter = parseLimiterFlags(flags);
  if (latency && Number(latency[1]) > Number(latency[2])) throw new AppError('REQUEST_INVALID', `--latency: MIN must be at most MAX (got "${flags.latency}")`, { action: OPTION_ACTION });
  const emulator = await startEmulator({
    host: flags.host,
    port,
    ...(flags.region ? { region: flags.region as 'singapore' | 'beijing' } : {}),
    quota: {
      ...(rpm !== undefined ? { rpm } : {}),
      ...(rps !== undefined ? { rps } : {}),
      ...(retryAfter !== undefined ? { retryAfterSeconds: retryAfter } : {}),
      burst: { enabled: flags.burstGuard },
      ...limiter,
    },
    ...(latency ? { latency: { minMs: Number(latency[1]), maxMs: Number(latency[2]) } } : {}),
  }, flags.host, port);
  if (flags.json) process.stdout.write(`${JSON.stringify({ url: emulator.url, stats: `${emulator.url}/__emulator/stats`, limiter: emulator.limiter.model })}\n`);
  else {
    process.stdout.write(`DashScope emulator listening at ${emulator.url}\n  DASHSCOPE_BASE_URL=${emulator.url}\n  stats: ${emulator.url}/__emulator/stats\n`);
    if (flags.limiter) process.stdout.write(`  limiter: ${emulator.limiter.model}\n`);
  }
  await new Promise<void>((resolve) => {
    process.once('SIGINT', () => resolve());
    process.once('SIGTERM', () => resolve());
  });
  await emulator.close();
  return 0;
}

/** The emulator's own refusals (an option out of range, a port in use) in our shape, not as a stack. */
async function startEmulator(options: Parameters<typeof createEmulator>[0], host: string, port: number) {
  try {
    return await createEmulator(options);
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    if (code === 'EADDRINUSE') throw new AppError('CONFIG_INVALID', `--port ${port}: ${host}:${port} is already in use`, { action: 'Choose another --port (0 picks a free one), or stop what listens there.' });
    if (code === 'EADDRNOTAVAIL' || code === 'EACCES') throw new AppError('CONFIG_INVALID', `--host ${host} --port ${port}: cannot listen there (${code})`, { action: 'Give a --host this machine has (127.0.0.1, 0.0.0.0) and a --port above 1023.' });
    if (error instanceof RangeError) throw new AppError('REQUEST_INVALID', error.message.replace(/^Invalid emulator option: /, ''), { action: OPTION_ACTION });
    throw error;
  }
}

interface LimiterFlags {
  model?: LimiterModel;
  windowMs?: number;
  bucketSize?: number;
  maxInFlight?: number;
  drift?: DriftStep[];
}

/** `--limiter`, `--window-ms`, `--bucket-size`, `--max-in-flight`, `--drift`, each checked. */
export function parseLimiterFlags(flags: Pick<EmulatorFlags, 'limiter' | 'windowMs' | 'bucketSize' | 'maxInFlight' | 'drift'>): LimiterFlags {
  const out: LimiterFlags = {};
  if (flags.limiter !== undefined) {
    if (!(LIMITER_MODELS as readonly string[]).includes(flags.limiter)) {
      throw new AppError('REQUEST_INVALID', `--limiter must be one of ${LIMITER_MODELS.join(', ')} (got "${flags.limiter}")`, { action: OPTION_ACTION });
    }
    out.model = flags.limiter as LimiterModel;
  }
  const windowMs = parseInteger('--window-ms', flags.windowMs);
  if (windowMs !== undefined) {
    if (windowMs < 1) throw new AppError('REQUEST_INVALID', `--window-ms must be at least 1 (got ${windowMs})`, { action: OPTION_ACTION });
    out.windowMs = windowMs;
  }
  const bucketSize = parseInteger('--bucket-size', flags.bucketSize);
  if (bucketSize !== undefined) {
    if (bucketSize < 1) throw new AppError('REQUEST_INVALID', `--bucket-size must be at least 1 (got ${bucketSize})`, { action: OPTION_ACTION });
    out.bucketSize = bucketSize;
  }
  const maxInFlight = parseInteger('--max-in-flight', flags.maxInFlight);
  if (maxInFlight !== undefined) {
    if (maxInFlight < 1) throw new AppError('REQUEST_INVALID', `--max-in-flight must be at least 1 (got ${maxInFlight})`, { action: OPTION_ACTION });
    out.maxInFlight = maxInFlight;
  }
  if (flags.drift !== undefined) out.drift = parseDrift(flags.drift);
  return out;
}

/** "0:600,60000:360" → steps; atMs whole ms ≥ 0, strictly increasing from 0; rpm > 0. */
function parseDrift(text: string): DriftStep[] {
  const invalid = (rule: string): AppError =>
    new AppError('REQUEST_INVALID', `--drift ${rule} (expected atMs:rpm pairs separated by commas, e.g. "0:600,60000:360"; got "${text}")`, { action: OPTION_ACTION });
  const steps = text.split(',').map((pair) => {
    const match = /^\s*(\d+)\s*:\s*(\d+(?:\.\d+)?)\s*$/.exec(pair);
    if (!match) throw invalid('steps must be whole ms, a colon, and a positive rpm');
    return { atMs: Number(match[1]), rpm: Number(match[2]) };
  });
  if (steps.some((step) => step.rpm <= 0)) throw invalid('rpm must be greater than 0');
  if (steps[0]?.atMs !== 0) throw invalid('must start with a step at 0 ms');
  if (steps.some((step, i) => i > 0 && step.atMs <= (steps[i - 1]?.atMs ?? -1))) {
    throw invalid('atMs must be strictly increasing');
  }
  return steps;
}
