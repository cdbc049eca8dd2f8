/**
 * The host (and port) of a URL, which is all that logs, listings and API answers show of a
 * webhook or feed URL: its path and query may carry a token. Undefined for text that is no URL.
 */
export function urlHost(url: string): string | undefined {
  try {
    return new URL(url).host;
  } catch {
    return undefined;
  }
}
