import type { IncomingMessage, ServerResponse } from 'node:http';
import type { ImageKey } from './image-key.js';
import { imageKeyId } from './image-key.js';
import type { ImageUrlSigner } from './image-url.js';
import type { LruCache } from './lru-cache.js';
import { sendOssError } from './oss-error.js';
import { renderPng, stampPng } from './png.js';
import type { StatsRecorder } from './stats.js';

export interface DownloadContext {
  readonly signer: ImageUrlSigner;
  readonly stats: StatsRecorder;
  /** Recently rendered PNGs by `imageKeyId`, so repeated downloads skip re-encoding. */
  readonly pngCache: LruCache<string, Buffer>;
  readonly host: string;
  readonly images: () => 'rendered' | 'template';
  /** The image host's clock, ahead of this machine's by this much. */
  readonly clockSkewMs: () => number;
}

/** GET on a signed image URL, answered the way OSS answers (XML errors, 403 once expired). */
export function handleImageDownload(req: IncomingMessage, res: ServerResponse, url: URL, ctx: DownloadContext): void {
  if (req.method !== 'GET') {
    sendOssError(res, 405, 'MethodNotAllowed', 'The specified method is not allowed against this resource.', ctx.host);
    return;
  }
  const hostNow = Date.now() + ctx.clockSkewMs();
  res.setHeader('date', new Date(hostNow).toUTCString());
  const check = ctx.signer.check(url.pathname, url.searchParams, hostNow);
  if (!check.ok) {
    if (check.status === 403) ctx.stats.count('downloadsRejected');
    sendOssError(res, check.status, check.code, check.message, ctx.host);
    return;
  }
  const png = ctx.images() === 'template' ? templatePng(check.key, ctx.pngCache) : cachedPng(check.key, ctx.pngCache);
  ctx.stats.count('downloads');
  res.writeHead(200, {
    'content-type': 'image/png',
    'content-length': png.length,
    etag: `"${imageKeyId(check.key)}"`,
    server: 'AliyunOSS',
  });
  res.end(png);
}

function cachedPng(key: ImageKey, cache: LruCache<string, Buffer>): Buffer {
  const id = imageKeyId(key);
  let png = cache.get(id);
  if (!png) {
    png = renderPng(key);
    cache.set(id, png);
  }
  return png;
}

function templatePng(key: ImageKey, cache: LruCache<string, Buffer>): Buffer {
  const sizeId = `template:${key.width}x${key.height}`;
  let template = cache.get(sizeId);
  if (!template) {
    template = renderPng({ ...key, promptHash: 'template', seed: 0 });
    cache.set(sizeId, template);
  }
  return stampPng(template, imageKeyId(key));
}
