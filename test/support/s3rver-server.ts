/** s3rver in-process, on a port that survives a stop/start (to simulate an S3 outage). */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import S3rver from 's3rver';
import { freePort } from '../../packages/shared/src/redis-server.js';

export interface S3rverHandle {
  endpoint: string;
  bucket: string;
  stop(): Promise<void>;
  start(): Promise<void>;
  close(): Promise<void>;
}

export async function startS3rver(bucket = 'images'): Promise<S3rverHandle> {
  const port = await freePort();
  const directory = mkdtempSync(join(tmpdir(), 'zimage-s3-'));
  let server: { run(): Promise<unknown>; close(): Promise<void> } | undefined;
  const start = async () => {
    server = new S3rver({ port, address: '127.0.0.1', silent: true, directory, configureBuckets: [{ name: bucket }] });
    await server.run();
  };
  const stop = async () => {
    await server?.close();
    server = undefined;
  };
  await start();
  return {
    endpoint: `http://127.0.0.1:${port}`,
    bucket,
    start,
    stop,
    async close() {
      await stop();
      rmSync(directory, { recursive: true, force: true });
    },
  };
}
