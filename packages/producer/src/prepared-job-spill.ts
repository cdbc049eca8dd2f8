/**
 * The jobs a batch file's first pass validated, kept in a private temporary file until the
 * second pass enqueues them. The second pass then adds exactly the jobs that were validated
 * (same ids, same payloads) without reading, mapping and validating the file again, and a
 * 100,000-row file still costs no more memory than a 10-row one.
 *
 * One JSON array per line; JSON text has no raw line breaks, so lines split on "\n".
 */
import { createReadStream } from 'node:fs';
import { mkdtemp, open, rm, type FileHandle } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { PreparedJob } from './prepare-job.js';

/** The job's own webhook (with its URL, which the payload holds only by reference) comes last. */
type SpilledJob = [jobId: string, bullPriority: number, idempotent: 0 | 1, payload: PreparedJob['payload'], webhook?: PreparedJob['webhook']];

const FLUSH_BYTES = 256 * 1024;

export class PreparedJobSpill {
  #pending = '';
  #written = 0;

  private constructor(
    readonly dir: string,
    readonly path: string,
    private readonly file: FileHandle,
  ) {}

  /** A new spill in its own folder under the OS temp dir (mode 0700: payloads hold prompts). */
  static async create(): Promise<PreparedJobSpill> {
    const dir = await mkdtemp(join(tmpdir(), 'zimage-ingest-'));
    const path = join(dir, 'jobs.jsonl');
    try {
      return new PreparedJobSpill(dir, path, await open(path, 'wx', 0o600));
    } catch (error) {
      await rm(dir, { recursive: true, force: true });
      throw error;
    }
  }

  /** How many jobs were added. */
  get count(): number {
    return this.#written;
  }

  /** Adds a job; returns a promise only when the buffer was written out (await it: backpressure). */
  add(job: PreparedJob): Promise<void> | undefined {
    const line: SpilledJob = job.webhook ? [job.jobId, job.bullPriority, job.idempotent ? 1 : 0, job.payload, job.webhook] : [job.jobId, job.bullPriority, job.idempotent ? 1 : 0, job.payload];
    this.#pending += `${JSON.stringify(line)}\n`;
    this.#written += 1;
    return this.#pending.length >= FLUSH_BYTES ? this.#flush() : undefined;
  }

  /** Writes what is buffered and closes the file for writing. */
  async finish(): Promise<void> {
    await this.#flush();
    await this.file.close();
  }

  /** The jobs in the order they were added, `size` at a time. */
  async *read(size: number): AsyncGenerator<PreparedJob[]> {
    let chunk: PreparedJob[] = [];
    let rest = '';
    for await (const text of createReadStream(this.path, { encoding: 'utf8', highWaterMark: FLUSH_BYTES })) {
      const lines = (rest + (text as string)).split('\n');
      rest = lines.pop() ?? '';
      for (const line of lines) {
        const [jobId, bullPriority, idempotent, payload, webhook] = JSON.parse(line) as SpilledJob;
        chunk.push({ jobId, bullPriority, idempotent: idempotent === 1, payload, ...(webhook ? { webhook } : {}) });
        if (chunk.length >= size) {
          yield chunk;
          chunk = [];
        }
      }
    }
    if (rest !== '') throw new Error(`${this.path}: the last line is cut short`);
    if (chunk.length > 0) yield chunk;
  }

  /** Deletes the file and its folder (also when it was never finished). */
  async remove(): Promise<void> {
    await this.file.close().catch(() => {});
    await rm(this.dir, { recursive: true, force: true });
  }

  async #flush(): Promise<void> {
    if (this.#pending === '') return;
    const text = this.#pending;
    this.#pending = '';
    await this.file.appendFile(text); // unlike write(), loops until all of it is written
  }
}
