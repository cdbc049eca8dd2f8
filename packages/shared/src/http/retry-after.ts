/**
 * The one reader of a server's "wait this long" headers, for every outbound request (upstream
 * calls, image downloads, webhook receivers, feeds).
 */

/**
 * Longest server-requested wait honoured anywhere: a bogus or hostile header must not park an
 * account, or hold a webhook, for days. Documented in docs/operations.md ("Outbound HTTP").
 */
export const MAX_RETRY_AFTER_MS = 10 * 60_000;

type Headers = Record<string, string | string[] | undefined>;

const HTTP_DATE = /^[A-Za-z]{3}, \d{2} [A-Za-z]{3} \d{4} \d{2}:\d{2}:\d{2} GMT$/;
const NUMBER = /^\d+(\.\d+)?$/;

/**
 * `retry-after-ms`, else `Retry-After` (seconds or an IMF-fixdate), in ms, capped at
 * MAX_RETRY_AFTER_MS; a date in the past is 0; undefined when absent or unreadable.
 */
export function parseRetryAfter(headers: Headers, now = Date.now()): number | undefined {
  const cap = (ms: number) => Math.min(MAX_RETRY_AFTER_MS, ms);
  const ms = first(headers['retry-after-ms'])?.trim();
  if (ms && NUMBER.test(ms)) return cap(Math.ceil(Number(ms)));
  const value = first(headers['retry-after'])?.trim();
  if (!value) return undefined;
  if (NUMBER.test(value)) return cap(Math.ceil(Number(value) * 1000));
  if (!HTTP_DATE.test(value)) return undefined;
  const date = Date.parse(value);
  return Number.isNaN(date) ? undefined : cap(Math.max(0, date - now));
}

function first(value: string | string[] | undefined): string | undefined {
  return Array.isArray(value) ? value[0] : value;
}
