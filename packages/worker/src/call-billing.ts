/**
 * Whether a failed upstream call was billed, as far as we can tell: for the budgets' settlement.
 * An answer from DashScope that is an error was not billed (throttled, rejected before
 * generation); a call cut off after it was sent may have been (the upstream may have generated
 * the image), and so may a 200 we could not read. A call that never left (no connection, no DNS)
 * was not.
 */
import type { AppError, Settlement } from '@zimage/shared';

/** Network failures before the request was sent: nothing can have been billed. */
const NOT_SENT = new Set(['ECONNREFUSED', 'ENOTFOUND', 'EAI_AGAIN', 'EHOSTUNREACH', 'ENETUNREACH', 'UND_ERR_CONNECT_TIMEOUT', 'UND_ERR_CONNECT', 'WEBHOOK_URL_REFUSED']);

export function billingOfFailure(error: AppError, aborted: boolean): Settlement {
  if (error.code === 'NETWORK_TIMEOUT' || error.code === 'NETWORK_ERROR') {
    return NOT_SENT.has(String(error.details['networkCode'] ?? '')) ? 'released' : 'maybe';
  }
  if (error.code === 'UPSTREAM_BAD_RESPONSE') return 'maybe';
  // A gateway that timed out may have let the call through to the model.
  if (error.code === 'UPSTREAM_GATEWAY' && error.details['upstreamStatus'] === 504) return 'maybe';
  // Our own abort (a cancel, a shutdown) cut the call at an unknown point.
  if (aborted) return 'maybe';
  return 'released';
}
