/**
 * Every error the API answers, in one shape: `{ error: { code, message, issues?, items? } }`, with
 * the status from the error catalogue. Bad input is always a 4xx: fastify's own parsing errors
 * (malformed JSON, wrong content type, body too large) are mapped here too; only a bug is a 5xx.
 */
import { AppError, asRedisUnavailable, ERROR_CATALOGUE, isAppError, isRedisConnectionError, type ErrorCode, type Logger } from '@zimage/shared';
import type { FastifyError, FastifyReply, FastifyRequest } from 'fastify';

export interface ErrorBody {
  error: { code: ErrorCode; message: string; issues?: unknown; items?: unknown; rejectedCount?: number };
}

export function errorBody(error: AppError): ErrorBody {
  const body: ErrorBody = { error: { code: error.code, message: error.message } };
  const details = error.details;
  if (Array.isArray(details['issues'])) body.error.issues = details['issues'];
  if (Array.isArray(details['items'])) body.error.items = details['items'];
  if (typeof details['rejectedCount'] === 'number') body.error.rejectedCount = details['rejectedCount'];
  return body;
}

const FASTIFY_CODES: Record<string, ErrorCode> = {
  FST_ERR_CTP_BODY_TOO_LARGE: 'PAYLOAD_TOO_LARGE',
  FST_ERR_CTP_INVALID_MEDIA_TYPE: 'UNSUPPORTED_MEDIA_TYPE',
  FST_ERR_CTP_INVALID_CONTENT_LENGTH: 'REQUEST_INVALID',
  FST_ERR_CTP_EMPTY_JSON_BODY: 'REQUEST_INVALID',
  FST_ERR_CTP_INVALID_JSON_BODY: 'REQUEST_INVALID',
};

/** Our error for whatever a handler or fastify threw. */
export function toApiError(error: unknown): AppError {
  if (isAppError(error)) return error;
  // Redis lost mid-request: a 503 the client may retry, not a 500 "bug".
  if (isRedisConnectionError(error)) return asRedisUnavailable(error, 'answering the request') as AppError;
  const fastifyError = error as Partial<FastifyError> | undefined;
  const mapped = fastifyError?.code ? FASTIFY_CODES[fastifyError.code] : undefined;
  if (mapped && fastifyError) return new AppError(mapped, describeParseError(fastifyError));
  const status = fastifyError?.statusCode;
  if (status !== undefined && status >= 400 && status < 500) {
    return new AppError(status === 413 ? 'PAYLOAD_TOO_LARGE' : status === 415 ? 'UNSUPPORTED_MEDIA_TYPE' : 'REQUEST_INVALID', fastifyError?.message ?? 'bad request');
  }
  return new AppError('INTERNAL', 'internal error', { cause: error });
}

function describeParseError(error: Partial<FastifyError>): string {
  if (error.code === 'FST_ERR_CTP_INVALID_JSON_BODY' || error.code === 'FST_ERR_CTP_EMPTY_JSON_BODY') return `body: ${error.message ?? 'is not valid JSON'}`;
  return error.message ?? 'bad request';
}

export function sendError(reply: FastifyReply, error: AppError): FastifyReply {
  const status = ERROR_CATALOGUE[error.code].httpStatus;
  return reply.code(status).type('application/json').send(errorBody(error));
}

export function errorHandler(logger: Logger) {
  return (error: unknown, request: FastifyRequest, reply: FastifyReply) => {
    const apiError = toApiError(error);
    if (apiError.code === 'INTERNAL') logger.error({ err: error, method: request.method, url: request.routeOptions.url }, 'API request failed');
    return sendError(reply, apiError);
  };
}
