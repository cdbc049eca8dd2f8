/**
 * Where a results manifest goes when no path is given: beside the images, in the storage folder
 * (`file:` storage), so that a batch's images and its manifest stay together whatever directory the
 * command ran in. With `s3://` storage there is no local folder: the current directory.
 */
import { join } from 'node:path';
import { parseStorageUrl } from '@zimage/shared';

export function defaultManifestPath(storageUrl: string, batchId: string): string {
  const storage = parseStorageUrl(storageUrl);
  return storage.kind === 'file' ? join(storage.dir, `${batchId}.results.jsonl`) : `zimage-${batchId}.results.jsonl`;
}
