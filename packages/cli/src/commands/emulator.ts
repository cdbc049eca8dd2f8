import { AppError } from '@zimage/shared';
import { createEmulator } from '@zimage/emulator';
import { parseInteger } from '../parse-options.js';

export interface EmulatorFlags {
  port: string;
  host: string;
  rpm?: string;
  rps?: string;
  latency?: string;
  burstGuard: boolean;
  retryAfter?: string;
  region?: string;
}

/** `zimage emulator --port N`: the local DashScope stand-in, until SIGINT/SIGTERM. */
export async function emulatorCommand(flags: EmulatorFlags): Promise<number> {
  const latency = flags.latency ? /^(\d+)-(\d+)$/.exec(flags.latency) : undefined;
  if (flags.latency && !latency) throw new AppError('REQUEST_INVALID', `--latency must look like MIN-MAX in ms (got "${flags.latency}")`);
  if (flags.region && flags.region !== 'singapore' && flags.region !== 'beijing') {
    throw new AppError('REQUEST_INVALID', `--region must be singapore or beijing (got "${flags.region}")`);
  }
  const port = parseInteger('--port', flags.port) ?? 0;
  if (port < 0 || port > 65535) throw new AppError('REQUEST_INVALID', `--port must be between 0 and 65535 (got ${port})`);
  const rpm = parseInteger('--rpm', flags.rpm);
  if (rpm !== undefined && rpm < 1) throw new AppError('REQUEST_INVALID', '--rpm must be at least 1');
  const rps = parseInteger('--rps', flags.rps);
  if (rps !== undefined && rps < 1) throw new AppError('REQUEST_INVALID', '--rps must be at least 1');
  const retryAfter = parseInteger('--retry-after', flags.retryAfter);
  const emulator = await createEmulator({
    host: flags.host,
    port,
    ...(flags.region ? { region: flags.region as 'singapore' | 'beijing' } : {}),
    quota: {
      ...(rpm !== undefined ? { rpm } : {}),
      ...(rps !== undefined ? { rps } : {}),
      ...(retryAfter !== undefined ? { retryAfterSeconds: retryAfter } : {}),
      burst: { enabled: flags.burstGuard },
    },
    ...(latency ? { latency: { minMs: Number(latency[1]), maxMs: Number(latency[2]) } } : {}),
  });
  process.stdout.write(`DashScope emulator listening at ${emulator.url}\n  DASHSCOPE_BASE_URL=${emulator.url}\n  stats: ${emulator.url}/__emulator/stats\n`);
  await new Promise<void>((resolve) => {
    process.once('SIGINT', () => resolve());
    process.once('SIGTERM', () => resolve());
  });
  await emulator.close();
  return 0;
}
