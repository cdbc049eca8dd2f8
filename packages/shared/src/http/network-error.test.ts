import { describe, expect, it } from 'vitest';
import { checkWebhookUrl } from '../webhooks/ssrf-guard.js';
import { classifyNetworkError } from './network-error.js';

describe('classifyNetworkError', () => {
  const withCode = (code: string, message = 'failed') => Object.assign(new Error(message), { code });

  it.each([
    ['UND_ERR_HEADERS_TIMEOUT', 'NETWORK_TIMEOUT'],
    ['UND_ERR_CONNECT_TIMEOUT', 'NETWORK_TIMEOUT'],
    ['UND_ERR_BODY_TIMEOUT', 'NETWORK_TIMEOUT'],
    ['ETIMEDOUT', 'NETWORK_TIMEOUT'],
    ['ECONNRESET', 'NETWORK_ERROR'],
    ['ECONNREFUSED', 'NETWORK_ERROR'],
    ['UND_ERR_SOCKET', 'NETWORK_ERROR'],
    ['ENOTFOUND', 'NETWORK_ERROR'],
  ] as const)('maps %s to %s (retried)', (code, expected) => {
    const cause = withCode(code);
    const error = classifyNetworkError(cause, 'POST generation');
    expect(error.code).toBe(expected);
    expect(error.retry).toBe('transient');
    expect(error.details).toEqual({ networkCode: code });
    expect(error.cause).toBe(cause);
    expect(error.message).toBe(`POST generation failed: ${code}: failed`);
  });

  it('uses the error name when there is no code', () => {
    const error = classifyNetworkError(new TypeError('fetch failed'), 'download');
    expect(error.code).toBe('NETWORK_ERROR');
    expect(error.details).toEqual({ networkCode: 'TypeError' });
  });

  it('wraps a thrown non-error', () => {
    const error = classifyNetworkError('socket closed', 'download');
    expect(error.code).toBe('NETWORK_ERROR');
    expect(error.message).toContain('socket closed');
    expect(error.cause).toBeInstanceOf(Error);
  });

  it('reads the connect-time guard refusal, bare or wrapped by undici, as WEBHOOK_URL_REFUSED (never retried)', async () => {
    const refused = await checkWebhookUrl('http://10.0.0.5/hook', { allowedHosts: [] }).catch((error: unknown) => error);
    for (const thrown of [refused, Object.assign(new TypeError('fetch failed'), { cause: refused })]) {
      const error = classifyNetworkError(thrown, 'Feed example.com');
      expect(error.code).toBe('WEBHOOK_URL_REFUSED');
      expect(error.retry).toBe('never');
      expect(error.message).toMatch(/^Feed example\.com failed: Webhook URL refused: host 10\.0\.0\.5 .*private/);
      expect(error.details).toMatchObject({ host: '10.0.0.5', networkCode: 'WEBHOOK_URL_REFUSED' });
    }
  });

  it('reads AbortSignal.timeout as a timeout', () => {
    const error = classifyNetworkError(new DOMException('The operation was aborted due to timeout', 'TimeoutError'), 'Feed');
    expect(error.code).toBe('NETWORK_TIMEOUT');
  });
});
