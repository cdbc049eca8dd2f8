/** s3rver in-process, on a port that survives a stop/start (to simulate an S3 outage). */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { S3Client } from '@aws-sdk/client-s3';
import S3rver from 's3rver';
import { freePort } from '../../packages/shared/src/redis-server.js';
import { createS3Client } from '@zimage/shared/s3';

export interface S3rverHandle {
  endpoint: string;
  bucket: string;
  /** A client for this server, built the way the `s3://` driver builds its own (checksums included). */
  client(): S3Client;
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
  const endpoint = `http://127.0.0.1:${port}`;
  return {
    endpoint,
    bucket,
    client: () => createS3Client({ endpoint, forcePathStyle: true, accessKeyId: 'S3RVER', secretAccessKey: 'S3RVER' }),
    start,
    stop,
    async close() {
      await stop();
      rmSync(directory, { recursive: true, force: true });
    },
  };
}
