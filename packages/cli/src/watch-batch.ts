/**
 * `--watch`: a progress bar (done, failed, total, images a minute, ETA) until the batch ends, then
 * a summary and the JSONL results manifest. Stops early, loudly, if the queue gets paused for an
 * account-wide error (bad key, arrears), because then nothing will move until an operator acts.
 * Warns, instead of waiting silently, while no worker is connected to the queue.
 */
import { createWriteStream } from 'node:fs';
import { mkdir } from 'node:fs/promises';
import { dirname } from 'node:path';
import type { BatchStatus, Producer } from '@zimage/producer';
import { SingleBar, Presets } from 'cli-progress';

export interface WatchOutcome {
  status: BatchStatus;
  seconds: number;
  imagesPerMinute: number;
  pausedReason: string | undefined;
}

/** How often the watch asks BullMQ whether any worker is connected. */
const WORKER_CHECK_MS = 5_000;

export async function watchBatch(producer: Producer, batchId: string, options: { pollMs?: number } = {}): Promise<WatchOutcome> {
  const started = Date.now();
  const workers = new WorkerPresence(producer);
  const bar = new SingleBar(
    {
      format: '{bar} {value}/{total} done | {failed} failed | {rate} img/min | ETA {etaText}',
      hideCursor: true,
      noTTYOutput: true,
      notTTYSchedule: 5_000,
      etaBuffer: 20,
    },
    Presets.shades_classic,
  );
  let status = await producer.getBatch(batchId);
  if (!status) throw new Error(`batch ${batchId} not found`);
  bar.start(status.total, 0, { failed: 0, rate: '0', etaText: '…' });
  let pausedReason: string | undefined;
  try {
    for (;;) {
      const latest = await producer.getBatch(batchId);
      // Its record expired (retention) while watched: nothing more will change.
      if (!latest) break;
      status = latest;
      const done = status.total - status.pending;
      const minutes = (Date.now() - started) / 60_000;
      const rate = minutes > 0 ? done / minutes : 0;
      const eta = rate > 0 ? (status.pending / rate) * 60 : undefined;
      bar.update(done, { failed: status.failed + status.expired, rate: rate.toFixed(1), etaText: eta === undefined ? '…' : formatSeconds(eta) });
      if (status.pending === 0) break;
      await workers.check();
      const pause = await producer.pauseState();
      if (pause.paused) {
        pausedReason = pause.reason ? `${pause.reason.code}: ${pause.reason.message} → ${pause.reason.action}` : 'paused by an operator';
        break;
      }
      await new Promise((resolve) => setTimeout(resolve, options.pollMs ?? 500));
    }
  } finally {
    bar.stop();
  }
  const seconds = (Date.now() - started) / 1000;
  return { status, seconds, imagesPerMinute: seconds > 0 ? (status.succeeded / seconds) * 60 : 0, pausedReason };
}

export async function writeManifest(producer: Producer, batchId: string, path: string): Promise<number> {
  const entries = await producer.batchResults(batchId);
  await mkdir(dirname(path), { recursive: true });
  const out = createWriteStream(path);
  for (const entry of entries) {
    out.write(
      `${JSON.stringify({ line: entry.line, rowKey: entry.rowKey, jobId: entry.jobId, status: entry.status, key: entry.key, sha256: entry.sha256, errorCode: entry.errorCode })}\n`,
    );
  }
  await new Promise<void>((resolve, reject) => out.end((error?: Error | null) => (error ? reject(error) : resolve())));
  return entries.length;
}

export function formatSummary(outcome: WatchOutcome): string {
  const s = outcome.status;
  return [
    `Batch ${s.batchId}: ${s.succeeded} succeeded, ${s.failed} failed, ${s.expired} expired, ${s.pending} pending (of ${s.total})`,
    `Time ${formatSeconds(outcome.seconds)} · ${outcome.imagesPerMinute.toFixed(1)} images a minute`,
  ].join('\n');
}

function formatSeconds(seconds: number): string {
  if (seconds < 60) return `${seconds.toFixed(1)} s`;
  const m = Math.floor(seconds / 60);
  if (m < 60) return `${m} min ${Math.round(seconds % 60)} s`;
  return `${Math.floor(m / 60)} h ${m % 60} min`;
}

/**
 * Says once when no worker is connected to the queue (BullMQ's worker list, CLIENT LIST), and once
 * when one is again. A Redis that refuses CLIENT LIST (some managed ones) gets no warning.
 */
export class WorkerPresence {
  private lastCheck = 0;
  private warned = false;

  constructor(private readonly producer: Producer) {}

  async check(now = Date.now()): Promise<void> {
    if (now - this.lastCheck < WORKER_CHECK_MS && this.lastCheck !== 0) return;
    this.lastCheck = now;
    const count = await this.producer.queue.getWorkersCount().catch(() => undefined);
    if (count === 0 && !this.warned) {
      this.warned = true;
      process.stderr.write(`\nWarning: no worker is connected to queue "${this.producer.queue.name}" (prefix ${this.producer.queue.opts.prefix}); nothing will run until one starts (\`zimage worker\` with the same REDIS_URL and ZIMAGE_PREFIX). Still watching.\n`);
    } else if (count !== undefined && count > 0 && this.warned) {
      this.warned = false;
      process.stderr.write(`\n${count} worker(s) connected.\n`);
    }
  }
}
