/**
 * Downloads the generated image from its temporary URL, with a size cap, and proves it is the whole
 * PNG we paid for. A 403/404 means the signed URL expired (or the object was lifecycled away): the
 * only remedy is to generate again, which the processor decides, not this function. To help it
 * decide, the refusal carries what OSS said (`ossCode`, `ossMessage`, and `confirmed` when that
 * proves the link is gone) and the server's clock (`serverDateMs`, to spot our own clock's skew).
 */
import { createHash } from 'node:crypto';
import { AppError, classifyNetworkError, declaredLength, discardBody, glimpseBody, readCappedBody, type CappedBody, type ErrorCode } from '@zimage/shared';
import { request, type Dispatcher } from 'undici';
import { checkImageUrl, type ImageHostPolicy } from './image-hosts.js';
import { parseOssErrorBody } from './oss-error-body.js';
import { checkPngStructure } from './png-structure.js';

/** OSS error documents are a few hundred bytes; more than this is not one, and is not read. */
export const MAX_ERROR_BODY_BYTES = 8 * 1024;

export interface DownloadOptions {
  dispatcher: Dispatcher;
  policy: ImageHostPolicy;
  maxBytes: number;
  timeoutMs: number;
  signal?: AbortSignal | undefined;
}

export interface ExpectedImage {
  width: number;
  height: number;
  /**
   * False when the API's answer carried no size (width/height are then only what was asked for):
   * the PNG's own size is returned without comparing. Undefined or true: a mismatch is IMAGE_INVALID.
   */
  sizeReported?: boolean | undefined;
}

export interface DownloadedImage {
  bytes: Buffer;
  sha256: string;
  width: number;
  height: number;
  /** The response's `Date` header (epoch ms), when it parses: the server's clock, for skew logs. */
  serverDateMs?: number;
}

export async function downloadImage(rawUrl: string, expected: ExpectedImage, options: DownloadOptions): Promise<DownloadedImage> {
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
  const serverDateMs = parseDateHeader(response.headers['date']);
  const fail = (code: ErrorCode, message: string, details: Record<string, unknown> = {}, cause?: unknown) =>
    new AppError(code, message, { cause, details: serverDateMs === undefined ? details : { ...details, serverDateMs } });

  if (statusCode === 403 || statusCode === 404) {
    const oss = parseOssErrorBody((await glimpseBody(response.body, MAX_ERROR_BODY_BYTES)).toString('utf8'));
    const said = oss.code ? ` ${oss.code}${oss.message ? `: ${oss.message}` : ''}` : '';
    throw fail('IMAGE_URL_EXPIRED', `Image URL answered ${statusCode}${said} (${oss.linkGone ? 'gone for good' : 'expired or removed'})`, {
      status: statusCode,
      ossCode: oss.code,
      ossMessage: oss.message,
      confirmed: oss.linkGone,
    });
  }
  if (statusCode !== 200) {
    discardBody(response.body);
    throw fail('IMAGE_DOWNLOAD_FAILED', `Image download answered HTTP ${statusCode}`, { status: statusCode });
  }
  const declared = declaredLength(response.headers);
  if (declared !== undefined && declared > options.maxBytes) {
    discardBody(response.body);
    throw fail('IMAGE_TOO_LARGE', `Image is ${declared} bytes, over the ${options.maxBytes}-byte cap`);
  }

  let read: CappedBody;
  try {
    read = await readCappedBody(response.body, options.maxBytes);
  } catch (error) {
    const network = classifyNetworkError(error, 'Image download');
    throw fail(network.code, network.message, network.details, error);
  }
  if (read.truncated) throw fail('IMAGE_TOO_LARGE', `Image is over the ${options.maxBytes}-byte cap`);
  const bytes = read.bytes;
  const total = bytes.length;
  // The whole structure, not just the header: a truncated body with a matching Content-Length
  // would otherwise be stored as a success. IMAGE_INVALID is transient: the download is retried.
  const png = checkPngStructure(bytes);
  if (!png.ok) throw fail('IMAGE_INVALID', `Downloaded ${total} bytes that are not a whole PNG: ${png.reason}`);
  if (expected.sizeReported !== false && (png.width !== expected.width || png.height !== expected.height)) {
    throw fail('IMAGE_INVALID', `PNG is ${png.width}×${png.height} but the API reported ${expected.width}×${expected.height}`);
  }
  return {
    bytes,
    sha256: createHash('sha256').update(bytes).digest('hex'),
    width: png.width,
    height: png.height,
    ...(serverDateMs === undefined ? {} : { serverDateMs }),
  };
}

function parseDateHeader(value: string | string[] | undefined): number | undefined {
  const text = Array.isArray(value) ? value[0] : value;
  if (!text) return undefined;
  const ms = Date.parse(text);
  return Number.isNaN(ms) ? undefined : ms;
}
