/**
 * Downloads the generated image from its temporary URL, with a size cap, and proves it is the PNG
 * we paid for. A 403/404 means the signed URL expired (or the object was lifecycled away): the
 * only remedy is to generate again, which the processor decides, not this function.
 */
import { createHash } from 'node:crypto';
import { AppError } from '@zimage/shared';
import { request, type Dispatcher } from 'undici';
import { discard } from './discard-body.js';
import { classifyNetworkError } from './classify-upstream-error.js';
import { checkImageUrl, type ImageHostPolicy } from './image-hosts.js';
import { readPngSize } from './png-header.js';

export interface DownloadOptions {
  dispatcher: Dispatcher;
  policy: ImageHostPolicy;
  maxBytes: number;
  timeoutMs: number;
  signal?: AbortSignal | undefined;
}

export interface DownloadedImage {
  bytes: Buffer;
  sha256: string;
  width: number;
  height: number;
}

export async function downloadImage(
  rawUrl: string,
  expected: { width: number; height: number },
  options: DownloadOptions,
): Promise<DownloadedImage> {
  const url = checkImageUrl(rawUrl, options.policy);
  let response: Dispatcher.ResponseData;
  try {
    // No redirect interceptor: a redirect is an error here, never followed to another host.
    response = await request(url, {
      method: 'GET',
      dispatcher: options.dispatcher,
      headersTimeout: options.timeoutMs,
      bodyTimeout: options.timeoutMs,
      signal: options.signal,
    });
  } catch (error) {
    throw classifyNetworkError(error, 'Image download');
  }
  const { statusCode } = response;
  if (statusCode !== 200) {
    await response.body.dump().catch(() => {});
    if (statusCode === 403 || statusCode === 404) {
      throw new AppError('IMAGE_URL_EXPIRED', `Image URL answered ${statusCode}: expired or removed`, { details: { status: statusCode } });
    }
    throw new AppError('IMAGE_DOWNLOAD_FAILED', `Image download answered HTTP ${statusCode}`, { details: { status: statusCode } });
  }
  const declared = Number(response.headers['content-length']);
  if (Number.isFinite(declared) && declared > options.maxBytes) {
    discard(response.body);
    throw new AppError('IMAGE_TOO_LARGE', `Image is ${declared} bytes, over the ${options.maxBytes}-byte cap`);
  }

  const hash = createHash('sha256');
  const chunks: Buffer[] = [];
  let total = 0;
  try {
    for await (const chunk of response.body) {
      const buffer = chunk as Buffer;
      total += buffer.length;
      if (total > options.maxBytes) {
        discard(response.body);
        throw new AppError('IMAGE_TOO_LARGE', `Image is over the ${options.maxBytes}-byte cap`);
      }
      hash.update(buffer);
      chunks.push(buffer);
    }
  } catch (error) {
    if (error instanceof AppError) throw error;
    throw classifyNetworkError(error, 'Image download');
  }
  const bytes = Buffer.concat(chunks, total);
  const size = readPngSize(bytes);
  if (!size) throw new AppError('IMAGE_INVALID', `Downloaded ${total} bytes that are not a PNG`);
  if (size.width !== expected.width || size.height !== expected.height) {
    throw new AppError(
      'IMAGE_INVALID',
      `PNG is ${size.width}×${size.height} but the API reported ${expected.width}×${expected.height}`,
    );
  }
  return { bytes, sha256: hash.digest('hex'), width: size.width, height: size.height };
}
