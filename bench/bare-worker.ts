/**
 * The baseline of the pipeline-overhead scenario: a BullMQ worker for the same API, written as a
 * competent user would write it in an afternoon. Per job: one POST to the generation endpoint (the
 * body zimage sends, packages/worker/src/dashscope-client.ts), the image URL read from the answer,
 * one GET of it, sha256 of the bytes, the file written to a folder as `<jobId>.png`, one XADD of
 * `{jobId, key, sha256}`. No governor, checkpoints, cancel checks, PNG check, metrics, webhooks or
 * logging. Failures just throw (BullMQ retries per the job's options).
 *
 * Env: REDIS_URL, QUEUE, PREFIX (BullMQ key prefix), CONCURRENCY, BASE_URL (the emulator),
 * API_KEY, OUTPUT_DIR, STREAM. Variants for the scenario's sensitivity checks, off by default:
 * BARE_HTTP=undici (undici `request` on a 64-connection Agent, as zimage does, instead of
 * `fetch`), BARE_FSYNC=1 (temp file + fsync + rename + folder fsync, as zimage's file storage does,
 * instead of a plain `writeFile`).
 */
import { Worker } from 'bullmq';
import { Redis } from 'ioredis';
import { createHash, randomBytes } from 'node:crypto';
import { mkdir, open, rename, writeFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { join } from 'node:path';

const env = (name: string, fallback?: string): string => {
  const value = process.env[name] ?? fallback;
  if (value === undefined) throw new Error(`bare-worker: ${name} is not set`);
  return value;
};

const baseUrl = env('BASE_URL');
const apiKey = env('API_KEY');
const dir = env('OUTPUT_DIR');
const stream = env('STREAM');
const generationUrl = `${baseUrl}/api/v1/services/aigc/multimodal-generation/generation`;

interface Generation {
  output?: { choices?: { message?: { content?: { image?: string; text?: string }[] } }[] };
}

interface Http {
  postJson(url: string, headers: Record<string, string>, body: string): Promise<{ status: number; json: () => Promise<unknown>; text: () => Promise<string> }>;
  getBytes(url: string): Promise<{ status: number; bytes: () => Promise<Buffer> }>;
}

const fetchHttp: Http = {
  async postJson(url, headers, body) {
    const response = await fetch(url, { method: 'POST', headers, body });
    return { status: response.status, json: () => response.json() as Promise<unknown>, text: () => response.text() };
  },
  async getBytes(url) {
    const response = await fetch(url);
    return { status: response.status, bytes: async () => Buffer.from(await response.arrayBuffer()) };
  },
};

interface UndiciBody {
  json(): Promise<unknown>;
  text(): Promise<string>;
  arrayBuffer(): Promise<ArrayBuffer>;
}
/** The part of undici used here (typed locally: the bench's tsconfig does not resolve undici). */
interface Undici {
  Agent: new (options: { keepAliveTimeout: number; connections: number }) => object;
  request(url: string, options: { method?: string; headers?: Record<string, string>; body?: string; dispatcher: object }): Promise<{ statusCode: number; body: UndiciBody }>;
}

/** undici is not a dependency of the repository root; borrow the worker package's copy. */
async function undiciHttp(): Promise<Http> {
  const undici = createRequire(new URL('../packages/worker/package.json', import.meta.url))('undici') as Undici;
  const dispatcher = new undici.Agent({ keepAliveTimeout: 30_000, connections: 64 });
  return {
    async postJson(url, headers, body) {
      const response = await undici.request(url, { method: 'POST', headers, body, dispatcher });
      return { status: response.statusCode, json: () => response.body.json(), text: () => response.body.text() };
    },
    async getBytes(url) {
      const response = await undici.request(url, { dispatcher });
      return { status: response.statusCode, bytes: async () => Buffer.from(await response.body.arrayBuffer()) };
    },
  };
}

const http = process.env['BARE_HTTP'] === 'undici' ? await undiciHttp() : fetchHttp;

async function save(path: string, bytes: Buffer): Promise<void> {
  if (process.env['BARE_FSYNC'] !== '1') return writeFile(path, bytes);
  const temp = `${path}.${randomBytes(6).toString('hex')}.tmp`;
  const file = await open(temp, 'wx');
  try {
    await file.writeFile(bytes);
    await file.sync();
  } finally {
    await file.close();
  }
  await rename(temp, path);
  const folder = await open(dir, 'r');
  try {
    await folder.sync();
  } finally {
    await folder.close();
  }
}

await mkdir(dir, { recursive: true });
const connection = new Redis(env('REDIS_URL', 'redis://127.0.0.1:6379'), { maxRetriesPerRequest: null });
const events = new Redis(env('REDIS_URL', 'redis://127.0.0.1:6379'));

const worker = new Worker<{ prompt: string; size: string }>(
  env('QUEUE'),
  async (job) => {
    const { prompt, size } = job.data;
    const generated = await http.postJson(
      generationUrl,
      { authorization: `Bearer ${apiKey}`, 'content-type': 'application/json' },
      JSON.stringify({ model: 'z-image-turbo', input: { messages: [{ role: 'user', content: [{ text: prompt }] }] }, parameters: { size, prompt_extend: false } }),
    );
    if (generated.status !== 200) throw new Error(`generation answered HTTP ${generated.status}: ${(await generated.text()).slice(0, 200)}`);
    const body = (await generated.json()) as Generation;
    const imageUrl = body.output?.choices?.[0]?.message?.content?.find((item) => item.image)?.image;
    if (!imageUrl) throw new Error('generation answer has no image URL');

    const image = await http.getBytes(imageUrl);
    if (image.status !== 200) throw new Error(`image download answered HTTP ${image.status}`);
    const bytes = await image.bytes();
    const sha256 = createHash('sha256').update(bytes).digest('hex');

    const key = `${job.id}.png`;
    await save(join(dir, key), bytes);
    await events.xadd(stream, 'MAXLEN', '~', '100000', '*', 'jobId', String(job.id), 'key', key, 'sha256', sha256);
    return { key, sha256 };
  },
  { connection, prefix: env('PREFIX', 'bull'), concurrency: Number(env('CONCURRENCY', '16')) },
);
worker.on('failed', (job, error) => process.stderr.write(`bare-worker: job ${job?.id} failed: ${error.message}\n`));

process.once('SIGTERM', () => {
  void worker.close().then(() => {
    connection.disconnect();
    events.disconnect();
    process.exit(0);
  });
});
