/**
 * The one classification of errors thrown before or while an answer arrives (undici, the socket,
 * our connect-time address guard, an abort), for every outbound request.
 */
import { AppError, type ErrorCode } from '../errors.js';

const TIMEOUT_CODES = new Set(['UND_ERR_CONNECT_TIMEOUT', 'UND_ERR_HEADERS_TIMEOUT', 'UND_ERR_BODY_TIMEOUT', 'ETIMEDOUT', 'TimeoutError']);

/**
 * NETWORK_TIMEOUT for a timeout (undici's, the socket's, `AbortSignal.timeout`'s), WEBHOOK_URL_REFUSED
 * when the connect-time guard refused the address the name resolved to, NETWORK_ERROR otherwise.
 * The message is `${what} failed: ${code}: ${message}`; `details.networkCode` is the code.
 */
export function classifyNetworkError(error: unknown, what: string): AppError {
  const err = error instanceof Error ? error : new Error(String(error));
  const refusal = guardRefusal(err);
  if (refusal) return new AppError('WEBHOOK_URL_REFUSED', `${what} failed: ${refusal.message}`, { cause: err, details: { ...refusal.details, networkCode: 'WEBHOOK_URL_REFUSED' } });
  const code = (err as { code?: unknown }).code;
  const codeText = typeof code === 'string' ? code : err.name;
  const errorCode: ErrorCode = TIMEOUT_CODES.has(codeText) ? 'NETWORK_TIMEOUT' : 'NETWORK_ERROR';
  return new AppError(errorCode, `${what} failed: ${codeText}: ${err.message}`, { cause: err, details: { networkCode: codeText } });
}

/** The guard's AppError, which undici may hand back as the error itself or as its cause. */
function guardRefusal(err: Error): { message: string; details: Record<string, unknown> } | undefined {
  for (let e: unknown = err, depth = 0; e instanceof Error && depth < 3; e = e.cause, depth += 1) {
    if ((e as { code?: unknown }).code === 'WEBHOOK_URL_REFUSED') {
      return { message: e.message, details: e instanceof AppError ? e.details : {} };
    }
  }
  return undefined;
}
