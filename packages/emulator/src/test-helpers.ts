/**
 * Shared by the integration tests only (excluded from the build). Everything goes over real HTTP
 * to a real emulator on port 0.
 */
import { afterEach } from 'vitest';
import { createEmulator } from './create-emulator.js';
import type { Emulator } from './emulator.js';
import type { EmulatorOptionsInput } from './emulator-options.js';
import { GENERATION_PATH } from './handle-generation.js';

/** Test defaults: no latency and no rate limits, so only what a test turns on can interfere. */
const FAST_AND_UNLIMITED: EmulatorOptionsInput = {
  latency: { minMs: 0, maxMs: 0, extendExtraMinMs: 0, extendExtraMaxMs: 0 },
  quota: { rps: Infinity, rpm: Infinity, burst: { enabled: false } },
  randomSeed: 1,
};

const open: Emulator[] = [];

afterEach(async () => {
  await Promise.all(open.splice(0).map((emulator) => emulator.close()));
});

/** Starts an emulator that is closed after the current test. */
export async function startEmulator(options: EmulatorOptionsInput = {}): Promise<Emulator> {
  const emulator = await createEmulator(FAST_AND_UNLIMITED);
  emulator.configure(options);
  open.push(emulator);
  return emulator;
}

export function requestBody(prompt = 'A sitting orange cat, happy, realistic', parameters?: object): object {
  return {
    model: 'z-image-turbo',
    input: { messages: [{ role: 'user', content: [{ text: prompt }] }] },
    ...(parameters ? { parameters } : {}),
  };
}

/** POSTs to the generation path with a valid key and JSON content type unless overridden. */
export function generate(
  emulator: Emulator,
  body: unknown = requestBody(),
  headers: Record<string, string> = {},
): Promise<Response> {
  return fetch(emulator.url + GENERATION_PATH, {
    method: 'POST',
    headers: { authorization: 'Bearer sk-test', 'content-type': 'application/json', ...headers },
    body: typeof body === 'string' ? body : JSON.stringify(body),
  });
}

export interface ErrorBody {
  code: string;
  message: string;
  request_id: string;
}

export interface SuccessBody {
  output: {
    choices: Array<{
      finish_reason: string;
      message: { role: string; content: Array<{ image?: string; text?: string }>; reasoning_content: string };
    }>;
  };
  usage: Record<string, unknown>;
  request_id: string;
}

export async function generateOk(emulator: Emulator, body: unknown = requestBody()): Promise<SuccessBody> {
  const res = await generate(emulator, body);
  if (res.status !== 200) throw new Error(`expected 200, got ${res.status}: ${await res.text()}`);
  return (await res.json()) as SuccessBody;
}

export function imageUrlOf(body: SuccessBody): string {
  const url = body.output.choices[0]?.message.content.find((item) => item.image !== undefined)?.image;
  if (url === undefined) throw new Error('no image in the response');
  return url;
}

/** Width and height from a PNG's IHDR chunk (signature 8 bytes, length 4, type 4, then data). */
export function pngSize(png: Buffer): { width: number; height: number } {
  if (png.subarray(1, 4).toString('latin1') !== 'PNG' || png.subarray(12, 16).toString('latin1') !== 'IHDR') {
    throw new Error('not a PNG');
  }
  return { width: png.readUInt32BE(16), height: png.readUInt32BE(20) };
}
