import type { OutgoingHttpHeaders, ServerResponse } from 'node:http';

/** A DashScope native-protocol error: flat `{code, message, request_id}` (reference §3.1). */
export interface DashScopeError {
  readonly status: number;
  readonly code: string;
  readonly message: string;
}

/**
 * Writes the error with the headers the real gateway sends (`x-request-id` equal to the body's
 * `request_id`). Key order follows the captured 401.
 */
export function sendErrorBody(
  res: ServerResponse,
  error: DashScopeError,
  requestId: string,
  extraHeaders: OutgoingHttpHeaders = {},
): void {
  const body = JSON.stringify({ code: error.code, message: error.message, request_id: requestId });
  res.writeHead(error.status, {
    'content-type': 'application/json',
    'content-length': Buffer.byteLength(body),
    'x-request-id': requestId,
    ...extraHeaders,
  });
  res.end(body);
}
