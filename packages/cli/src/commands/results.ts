/**
 * `zimage results BATCH [--download DIR]`: the batch's results manifest (NDJSON on stdout), and
 * with `--download` its images from storage into DIR under their keys, plus the manifest beside
 * them.
 *
 * Resumable: an image already in DIR with the manifest's sha256 is not read again, and each image
 * is written to a temporary file renamed into place only once complete and verified, so an
 * interrupted download leaves no half image that a rerun would take for done.
 */
import { createHash, randomUUID } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { mkdir, rename, rm, writeFile } from 'node:fs/promises';
import { dirname, join, resolve } from 'node:path';
import type { ManifestEntry } from '@zimage/shared';
import { AppError, loadConfig, resolveContainedPath, storageReaderEnvSchema, type Storage } from '@zimage/shared';
import { producerFromEnv } from '../producer-from-env.js';
import { storageFromEnv } from '../storage-from-env.js';
import { writeManifest } from '../watch-batch.js';

export interface ResultsFlags {
  download?: string;
  json?: boolean;
}

export interface DownloadReport {
  batchId: string;
  dir: string;
  manifest: string;
  downloaded: number;
  alreadyPresent: number;
  /** Succeeded jobs whose image is no longer in storage (or not as the manifest says). */
  missing: { jobId: string; key: string; reason: string }[];
  /** Jobs that have no image: failed, expired, cancelled. */
  withoutImage: number;
  /** Jobs of the batch not finished yet (not in the manifest). */
  pending: number;
}

/** Images read from storage at once. */
const PARALLEL_READS = 4;

export async function resultsCommand(batchId: string, flags: ResultsFlags): Promise<number> {
  const env = loadConfig(storageReaderEnvSchema, process.env);
  const producer = await producerFromEnv(env);
  try {
    const batch = await producer.getBatch(batchId);
    if (!batch) throw new AppError('JOB_NOT_FOUND', `no batch ${batchId}`, { action: 'Check the id with `zimage batches`.' });
    if (batch.pending > 0) process.stderr.write(`Batch ${batchId} is still running: ${batch.pending} of ${batch.total} jobs pending; the manifest lists the finished ones.\n`);
    if (flags.download === undefined) {
      for (const entry of await producer.batchResults(batchId)) process.stdout.write(`${JSON.stringify(entry)}\n`);
      return 0;
    }
    const dir = resolve(flags.download);
    const entries = await producer.batchResults(batchId);
    const report = await download(storageFromEnv(env), entries, dir, batchId);
    report.pending = batch.pending;
    report.manifest = join(dir, `${batchId}.results.jsonl`);
    await writeManifest(producer, batchId, report.manifest);
    if (flags.json) process.stdout.write(`${JSON.stringify(report)}\n`);
    else {
      process.stderr.write(
        `Downloaded ${report.downloaded} image(s) to ${dir}; ${report.alreadyPresent} already there; ${report.withoutImage} job(s) without an image` +
          `${report.missing.length > 0 ? `; ${report.missing.length} missing from storage` : ''}\nResults manifest: ${report.manifest}\n`,
      );
      for (const m of report.missing.slice(0, 50)) process.stderr.write(`  missing ${m.key} (job ${m.jobId}): ${m.reason}\n`);
    }
    return report.missing.length > 0 ? 1 : 0;
  } finally {
    await producer.close();
  }
}

async function download(storage: Storage, entries: readonly ManifestEntry[], dir: string, batchId: string): Promise<DownloadReport> {
  const report: DownloadReport = { batchId, dir, manifest: '', downloaded: 0, alreadyPresent: 0, missing: [], withoutImage: 0, pending: 0 };
  const images = entries.filter((e) => e.status === 'succeeded' && e.key !== undefined && e.sha256 !== undefined);
  report.withoutImage = entries.length - images.length;
  let next = 0;
  const worker = async () => {
    while (next < images.length) {
      const entry = images[next++] as ManifestEntry & { key: string; sha256: string };
      // The key came from Redis: it is held to the folder like any path from outside.
      let target: string;
      try {
        target = resolveContainedPath(dir, entry.key);
      } catch {
        report.missing.push({ jobId: entry.jobId, key: entry.key, reason: 'its key would lead outside the folder; not written' });
        continue;
      }
      if ((await sha256OfFile(target)) === entry.sha256) {
        report.alreadyPresent += 1;
        continue;
      }
      const bytes = await storage.read(entry.key);
      if (!bytes) {
        report.missing.push({ jobId: entry.jobId, key: entry.key, reason: 'not in storage' });
        continue;
      }
      if (createHash('sha256').update(bytes).digest('hex') !== entry.sha256) {
        report.missing.push({ jobId: entry.jobId, key: entry.key, reason: 'the stored object is not the image this job stored (sha256 differs): another job or process wrote that key' });
        continue;
      }
      await mkdir(dirname(target), { recursive: true });
      // Its own name: two entries may share a key, and a rerun must not meet another's leftover.
      const partial = `${target}.${randomUUID()}.part`;
      try {
        await writeFile(partial, bytes);
        await rename(partial, target);
      } catch (error) {
        await rm(partial, { force: true });
        throw error;
      }
      report.downloaded += 1;
    }
  };
  // Every reader runs to its end before a failure is reported, so none is left writing.
  const settled = await Promise.allSettled(Array.from({ length: Math.min(PARALLEL_READS, images.length) }, worker));
  const failure = settled.find((s): s is PromiseRejectedResult => s.status === 'rejected');
  if (failure) throw failure.reason;
  return report;
}

async function sha256OfFile(path: string): Promise<string | undefined> {
  const hash = createHash('sha256');
  try {
    for await (const chunk of createReadStream(path)) hash.update(chunk as Buffer);
  } catch {
    return undefined; // absent (or unreadable): fetched again
  }
  return hash.digest('hex');
}
