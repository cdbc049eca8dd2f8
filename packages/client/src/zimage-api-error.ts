/** An error answer of the API as a thrown error, for helpers that wait (`waitForJob`). */
import type { components } from './schema.js';

export type ApiErrorBody = components['schemas']['Error'];

export class ZimageApiError extends Error {
  override readonly name = 'ZimageApiError';
  readonly code: ApiErrorBody['error']['code'] | 'HTTP_ERROR';
  readonly status: number;
  readonly issues: ApiErrorBody['error']['issues'];

  constructor(status: number, body: unknown) {
    const error = (body as Partial<ApiErrorBody> | undefined)?.error;
    super(error?.message ?? `HTTP ${status}`);
    this.status = status;
    this.code = error?.code ?? 'HTTP_ERROR';
    this.issues = error?.issues;
  }
}
