import type { IncomingHttpHeaders } from 'node:http';

/**
 * The key sent by the client: `Authorization: Bearer <key>` or, as the Qwen Cloud docs allow,
 * `X-DashScope-ApiKey: <key>`. When `Authorization` is present it wins, so a malformed
 * `Authorization` is not rescued by the other header. Returns `undefined` when missing or
 * malformed.
 */
export function extractApiKey(headers: IncomingHttpHeaders): string | undefined {
  const authorization = headers.authorization;
  if (authorization !== undefined) {
    const match = /^Bearer +(\S+)\s*$/i.exec(authorization);
    return match?.[1];
  }
  const alternative = headers['x-dashscope-apikey'];
  const key = Array.isArray(alternative) ? alternative[0] : alternative;
  return key !== undefined && key.trim().length > 0 ? key.trim() : undefined;
}

/** With an allow-list only those keys pass; otherwise any plausible `sk-…` key does. */
export function isApiKeyAccepted(key: string | undefined, apiKeys: readonly string[] | undefined): boolean {
  if (key === undefined) return false;
  if (apiKeys !== undefined) return apiKeys.includes(key);
  return key.startsWith('sk-') && key.length > 'sk-'.length;
}
