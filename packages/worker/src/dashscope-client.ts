/**
 * The DashScope z-image-turbo client: one POST per call, never retried here.
 *
 * Retries live in exactly one layer — BullMQ — because a repeated POST may be billed again
 * (DashScope has no idempotency key). This client only makes the call, with explicit timeouts on
 * a keep-alive pool, and turns every outcome into a `GenerationOutput` or a classified `AppError`.
 */
import { AppError, classifyNetworkError, createOutboundAgent, parseRetryAfter, readCappedBody, UPSTREAM_MODEL } from '@zimage/shared';
import { request, type Dispatcher } from 'undici';
import { classifyUpstreamFailure } from './classify-upstream-error.js';
import { errorBodySchema, readGenerationOutput, type GenerationOutput } from './dashscope-response.js';

export const GENERATION_PATH = '/api/v1/services/aigc/multimodal-generation/generation';
export const MODEL = UPSTREAM_MODEL;

export interface DashscopeClientOptions {
  baseUrl: string;
  apiKey: string;
  /** Connect timeout, ms. */
  connectTimeoutMs: number;
  /** Time to the response headers, ms; doubled with prompt_extend, which is documented as slower. */
  requestTimeoutMs: number;
  /** Share one pool with the image downloader; created (and closed) here when absent. */
  dispatcher?: Dispatcher;
}

export interface GenerateInput {
  prompt: string;
  width: number;
  height: number;
  seed?: number | undefined;
  promptExtend: boolean;
  signal?: AbortSignal | undefined;
}

export interface DashscopeClient {
  generate(input: GenerateInput): Promise<GenerationOutput>;
  close(): Promise<void>;
}

/** Largest error or success body we read; real ones are a few KB. */
const MAX_BODY_BYTES = 1024 * 1024;

export function createDashscopeClient(options: DashscopeClientOptions): DashscopeClient {
  const ownDispatcher = options.dispatcher === undefined;
  const dispatcher =
    options.dispatcher ?? createOutboundAgent({ connectTimeoutMs: options.connectTimeoutMs, connections: 64 });
  const url = `${options.baseUrl}${GENERATION_PATH}`;

  async function generate(input: GenerateInput): Promise<GenerationOutput> {
    const parameters: Record<string, unknown> = { size: `${input.width}*${input.height}`, prompt_extend: input.promptExtend };
    if (input.seed !== undefined) parameters['seed'] = input.seed;
    const body = JSON.stringify({
      model: MODEL,
      input: { messages: [{ role: 'user', content: [{ text: input.prompt }] }] },
      parameters,
    });
    const timeoutMs = input.promptExtend ? options.requestTimeoutMs * 2 : options.requestTimeoutMs;

    let response: Dispatcher.ResponseData;
    try {
      response = await request(url, {
        method: 'POST',
        dispatcher,
        headers: { authorization: `Bearer ${options.apiKey}`, 'content-type': 'application/json' },
        body,
        headersTimeout: timeoutMs,
        bodyTimeout: timeoutMs,
        signal: input.signal,
      });
    } catch (error) {
      throw classifyNetworkError(error, 'DashScope request');
    }

    let text: string;
    try {
      const read = await readCappedBody(response.body, MAX_BODY_BYTES);
      if (read.truncated) throw new Error(`response body over ${MAX_BODY_BYTES} bytes`);
      text = read.bytes.toString('utf8');
    } catch (error) {
      throw classifyNetworkError(error, 'Reading the DashScope response');
    }
    const headerRequestId = headerValue(response.headers['x-request-id']);
    const json = parseJson(text);

    if (response.statusCode === 200) {
      const output = json === undefined ? 'success body is not JSON' : readGenerationOutput(json, input.prompt, headerRequestId);
      if (typeof output === 'string') {
        throw new AppError('UPSTREAM_BAD_RESPONSE', `DashScope HTTP 200 but ${output}`, { details: { requestId: headerRequestId } });
      }
      return output;
    }

    const errorBody = errorBodySchema.safeParse(json);
    const parsed = errorBody.success ? errorBody.data : undefined;
    throw classifyUpstreamFailure({
      status: response.statusCode,
      code: parsed?.code === undefined ? undefined : String(parsed.code),
      message: parsed?.message ?? parsed?.msg ?? (text.trim().slice(0, 200) || '(empty body)'),
      requestId: parsed?.request_id ?? headerRequestId,
      retryAfterMs: parseRetryAfter(response.headers),
    });
  }

  return {
    generate,
    async close() {
      if (ownDispatcher) await dispatcher.close();
    },
  };
}

function parseJson(text: string): unknown {
  try {
    return JSON.parse(text) as unknown;
  } catch {
    return undefined;
  }
}

function headerValue(value: string | string[] | undefined): string | undefined {
  return Array.isArray(value) ? value[0] : value;
}
