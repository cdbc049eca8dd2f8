/**
 * The typed client: openapi-fetch over the generated `paths`, with the bearer token on every
 * request. Every call answers `{ data, error, response }`; `error` is the API's error body
 * (`{ error: { code, message, issues? } }`), typed by the document.
 */
import createClient, { type Client, type ClientOptions } from 'openapi-fetch';
import type { paths } from './schema.js';

export interface ZimageClientOptions {
  /** The API's origin, e.g. `http://127.0.0.1:8080`. */
  baseUrl: string;
  /** One of the API's tokens (ZIMAGE_API_TOKENS). */
  token: string;
  /** A fetch to use instead of the global one (proxies, tests). */
  fetch?: ClientOptions['fetch'];
}

export type ZimageClient = Client<paths>;

export function createZimageClient(options: ZimageClientOptions): ZimageClient {
  if (!/^https?:\/\//.test(options.baseUrl)) throw new TypeError('baseUrl: must be an absolute http(s) URL, e.g. http://127.0.0.1:8080');
  if (options.token.length === 0) throw new TypeError('token: must be one of the API tokens (ZIMAGE_API_TOKENS)');
  return createClient<paths>({
    baseUrl: options.baseUrl.replace(/\/+$/, ''),
    headers: { authorization: `Bearer ${options.token}` },
    ...(options.fetch ? { fetch: options.fetch } : {}),
  });
}
