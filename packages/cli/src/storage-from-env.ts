/** The object store configured by STORAGE_URL and the AWS_* variables (worker, demo, API). */
import { createStorage, type Storage, type WorkerEnv } from '@zimage/shared';

type StorageEnv = Pick<WorkerEnv, 'STORAGE_URL' | 'AWS_REGION' | 'AWS_ENDPOINT_URL_S3' | 'ZIMAGE_S3_FORCE_PATH_STYLE' | 'AWS_ACCESS_KEY_ID' | 'AWS_SECRET_ACCESS_KEY'>;

export function storageFromEnv(env: StorageEnv): Storage {
  return createStorage({
    url: env.STORAGE_URL,
    s3: {
      region: env.AWS_REGION,
      endpoint: env.AWS_ENDPOINT_URL_S3,
      forcePathStyle: env.ZIMAGE_S3_FORCE_PATH_STYLE,
      accessKeyId: env.AWS_ACCESS_KEY_ID,
      secretAccessKey: env.AWS_SECRET_ACCESS_KEY,
    },
  });
}
