/** The HTTP API on a real listening server over a test stack, and a small client for it. */
import type { AddressInfo } from 'node:net';
import { createApi } from '@zimage/api';
import { createLogger } from '@zimage/shared';
import { startStack, type Stack, type StackOptions } from './stack.js';

export const TOKEN = 'test-token-0123456789abcdef';
const logger = createLogger({ level: process.env['TEST_LOG_LEVEL'] ?? 'silent', pretty: false });

export interface ApiHarness extends AsyncDisposable {
  stack: Stack;
  app: Awaited<ReturnType<typeof createApi>>;
  url: string;
  // biome-ignore lint/suspicious/noExplicitAny: tests read whatever JSON the API answered
  call(method: string, path: string, options?: { body?: unknown; raw?: string; type?: string; headers?: Record<string, string>; token?: string | null }): Promise<{ status: number; body: any; text: string; headers: Headers }>;
}

export interface ApiHarnessOptions {
  /** ZIMAGE_API_MAX_BODY_BYTES. */
  maxBodyBytes?: number;
  /** ZIMAGE_SCHEDULE_FILES_DIR. */
  scheduleFilesDir?: string;
  /** ZIMAGE_API_TENANT_TOKENS: token → tenant. */
  tenantTokens?: ReadonlyMap<string, string>;
  /** ZIMAGE_METRICS_TOKEN, ZIMAGE_METRICS_PUBLIC. */
  metrics?: { token?: string; public?: boolean };
}

export async function startApi(options: StackOptions = {}, api: ApiHarnessOptions = {}): Promise<ApiHarness> {
  const stack = await startStack(options);
  const app = await createApi({ producer: stack.producer, redis: stack.redis, storage: stack.storage, prefix: stack.prefix, tokens: [TOKEN, 'second-token-abcdefghijkl'], logger, ...api });
  await app.listen({ port: 0, host: '127.0.0.1' });
  const url = `http://127.0.0.1:${(app.server.address() as AddressInfo).port}`;
  const close = async () => {
    await app.close();
    await stack.close();
  };
  return {
    stack,
    app,
    url,
    async call(method, path, o = {}) {
      const headers: Record<string, string> = { ...(o.headers ?? {}) };
      if (o.token !== null) headers['authorization'] ??= `Bearer ${o.token ?? TOKEN}`;
      let body: string | undefined;
      if (o.raw !== undefined) {
        body = o.raw;
        headers['content-type'] ??= o.type ?? 'application/json';
      } else if (o.body !== undefined) {
        body = JSON.stringify(o.body);
        headers['content-type'] ??= 'application/json';
      }
      const response = await fetch(`${url}${path}`, { method, headers, ...(body !== undefined ? { body } : {}) });
      const text = await response.text();
      let parsed: unknown;
      try {
        parsed = JSON.parse(text);
      } catch {
        parsed = undefined;
      }
      return { status: response.status, body: parsed, text, headers: response.headers };
    },
    [Symbol.asyncDispose]: close,
  };
}

