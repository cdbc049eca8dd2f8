/**
 * Which image URLs the worker may download. The upstream returns signed OSS URLs on hosts that
 * vary by region and time, so the default allows `*.aliyuncs.com` (over https) plus the host of
 * DASHSCOPE_BASE_URL (the emulator, or a workspace domain). Anything else is refused: an upstream
 * answer must not be able to point the worker at an internal address.
 */
import { AppError } from '@zimage/shared';

export const DEFAULT_IMAGE_HOSTS = ['*.aliyuncs.com'];

export interface ImageHostPolicy {
  /** Host patterns: `example.com`, `*.example.com`, `host:port`. */
  hosts: readonly string[];
  /** The accounts' base URL origins; plain http is accepted only from these (a local emulator). */
  baseOrigins: readonly string[];
}

export function imageHostPolicy(configuredHosts: readonly string[] | undefined, baseUrls: string | readonly string[]): ImageHostPolicy {
  const bases = (typeof baseUrls === 'string' ? [baseUrls] : baseUrls).map((u) => new URL(u));
  return {
    hosts: [...(configuredHosts ?? DEFAULT_IMAGE_HOSTS), ...bases.map((b) => b.host.toLowerCase())],
    baseOrigins: bases.map((b) => b.origin),
  };
}

/** Returns the URL to fetch (http upgraded to https for aliyuncs.com), or throws IMAGE_HOST_NOT_ALLOWED. */
export function checkImageUrl(raw: string, policy: ImageHostPolicy): URL {
  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    throw new AppError('IMAGE_HOST_NOT_ALLOWED', `Image URL is not a valid URL: ${raw.slice(0, 120)}`);
  }
  if (url.protocol === 'http:' && url.hostname.toLowerCase().endsWith('.aliyuncs.com')) url.protocol = 'https:';
  const host = url.host.toLowerCase();
  if (!policy.hosts.some((pattern) => hostMatches(host, url.hostname.toLowerCase(), pattern))) {
    throw new AppError('IMAGE_HOST_NOT_ALLOWED', `Image host ${host} is not in ZIMAGE_IMAGE_HOSTS (${policy.hosts.join(', ')})`);
  }
  if (url.protocol === 'https:') return url;
  if (url.protocol === 'http:' && policy.baseOrigins.includes(url.origin)) return url;
  throw new AppError('IMAGE_HOST_NOT_ALLOWED', `Image URL must be https (got ${url.protocol}//${host})`);
}

/** A pattern without a port matches the default port only (`url.host` then has no port). */
function hostMatches(hostWithPort: string, hostname: string, pattern: string): boolean {
  if (pattern.includes(':')) return hostWithPort === pattern;
  if (hostWithPort !== hostname) return false;
  if (pattern.startsWith('*.')) return hostname.endsWith(pattern.slice(1)) && hostname.length > pattern.length - 1;
  return hostname === pattern;
}
