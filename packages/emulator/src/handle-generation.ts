import type { IncomingMessage, OutgoingHttpHeaders, ServerResponse } from 'node:http';
import { randomUUID } from 'node:crypto';
import { performance } from 'node:perf_hooks';
import { extractApiKey, isApiKeyAccepted } from './api-key.js';
import type { EmulatorOptions } from './emulator-options.js';
import type { DashScopeError } from './error-body.js';
import { sendErrorBody } from './error-body.js';
import { FAULT_CATALOGUE } from './fault-catalogue.js';
import type { FaultPicker } from './fault-picker.js';
import { sendGatewayPage } from './gateway-page.js';
import { hashPrompt } from './image-key.js';
import type { ImageUrlSigner } from './image-url.js';
import { expiresAt } from './image-url.js';
import { sampleLatencyMs } from './latency.js';
import { moderatePrompt } from './moderate-prompt.js';
import { imagePriceMicroUsd } from './pricing.js';
import type { Prng } from './prng.js';
import { extendPrompt } from './prompt-extend.js';
import type { ManagedLimiter } from './managed-limiter.js';
import { readBody } from './read-body.js';
import { sleep } from './sleep.js';
import type { StatsRecorder } from './stats.js';
import { buildSuccessBody } from './success-body.js';
import type { GenerationRequest } from './validate-request.js';
import { MAX_SEED, validateRequest } from './validate-request.js';

/** The one DashScope endpoint the emulator serves (z-image is synchronous only). */
export const GENERATION_PATH = '/api/v1/services/aigc/multimodal-generation/generation';

/** The emulator state a generation request works with. */
export interface GenerationContext {
  readonly options: () => EmulatorOptions;
  /** Origin of the emulator, used for the image URLs. */
  readonly baseUrl: string;
  readonly stats: StatsRecorder;
  /** The account rate limiter; every accepted request's admission must be released once answered. */
  readonly limiter: ManagedLimiter;
  readonly faults: FaultPicker;
  readonly rng: Prng;
  readonly signer: ImageUrlSigner;
  /** Aborted by `close()`: pending waits end and their requests are abandoned unbilled. */
  readonly shutdown: AbortSignal;
}

const INVALID_API_KEY: DashScopeError = {
  status: 401,
  code: 'InvalidApiKey',
  message: 'Invalid API-key provided.',
};
const ASYNC_NOT_SUPPORTED: DashScopeError = {
  status: 403,
  code: 'AccessDenied',
  message: 'current user api does not support asynchronous calls.',
};
const invalidParameter = (message: string): DashScopeError => ({
  status: 400,
  code: 'InvalidParameter',
  message,
});
const BODY_INVALID = invalidParameter('Required body invalid, please check the request body format.');

// Headers the real gateway adds to every answer it produces (reference §2).
const GATEWAY_HEADERS: OutgoingHttpHeaders = {
  'x-dashscope-call-gateway': 'true',
  'x-dashscope-timeout': '298',
  server: 'istio-envoy',
};

/**
 * One POST to the generation path. The order of checks is part of the contract: auth, async
 * header, body and validation, quota, trigger words, faults, latency, success. Only a success is
 * billed (including `dropAfterBilling` and clients that hung up while the image was generated,
 * since upstream finishes and bills such requests too).
 */
export async function handleGeneration(
  req: IncomingMessage,
  res: ServerResponse,
  ctx: GenerationContext,
): Promise<void> {
  const arrivedAt = performance.now();
  const requestId = randomUUID();
  const options = ctx.options();
  ctx.stats.arrived(arrivedAt);
  let clientGone = false;
  res.once('close', () => {
    if (!res.writableFinished) clientGone = true;
    ctx.stats.settled();
  });

  const fail = (error: DashScopeError): void => {
    ctx.stats.error(error.code);
    if (clientGone) return;
    const headers: OutgoingHttpHeaders = {
      ...GATEWAY_HEADERS,
      'req-cost-time': String(Math.round(performance.now() - arrivedAt)),
    };
    if (error.status === 429 && options.quota.retryAfterSeconds !== undefined) {
      headers['retry-after'] = String(Math.ceil(options.quota.retryAfterSeconds));
    }
    sendErrorBody(res, error, requestId, headers);
  };

  if (!isApiKeyAccepted(extractApiKey(req.headers), options.apiKeys)) return fail(INVALID_API_KEY);
  if (String(req.headers['x-dashscope-async'] ?? '').toLowerCase() === 'enable') {
    return fail(ASYNC_NOT_SUPPORTED);
  }
  if (!isJsonContentType(req.headers['content-type'])) {
    return fail(invalidParameter('The input parameter requires json format: Content-Type must be application/json.'));
  }

  let read: Awaited<ReturnType<typeof readBody>>;
  try {
    read = await readBody(req, options.maxBodyBytes);
  } catch {
    return; // The client went away mid-body; there is nobody to answer.
  }
  if (!read.ok) {
    return fail(invalidParameter(`Request body is too large (limit ${options.maxBodyBytes} bytes).`));
  }
  let parsed: unknown;
  try {
    parsed = JSON.parse(read.body.toString('utf8'));
  } catch {
    return fail(BODY_INVALID);
  }
  const validation = validateRequest(parsed);
  if (!validation.ok) return fail(validation.error);
  const request = validation.request;

  const now = performance.now();
  const admission = ctx.limiter.admit(now);
  if (admission.code !== undefined) {
    ctx.stats.throttled(admission.code);
    return fail(FAULT_CATALOGUE[admission.code]);
  }
  ctx.stats.accepted(now);
  // Every way out of an accepted request (an answer, a drop, close(), a bug) frees its admission,
  // so the concurrency model's slots cannot leak. A client that hung up keeps its slot until the
  // generation ends, as upstream keeps working on it. `done()` runs right after the response is
  // written, before the client can react to it, so a client never sees its own slot still taken.
  try {
    await answerAccepted(req, res, ctx, { options, request, requestId, arrivedAt, fail, clientGone: () => clientGone });
  } finally {
    admission.done();
  }
}

interface AcceptedRequest {
  readonly options: EmulatorOptions;
  readonly request: GenerationRequest;
  readonly requestId: string;
  readonly arrivedAt: number;
  readonly fail: (error: DashScopeError) => void;
  readonly clientGone: () => boolean;
}

/** The part after the quota: trigger words, faults, latency, billing and the success body. */
async function answerAccepted(
  req: IncomingMessage,
  res: ServerResponse,
  ctx: GenerationContext,
  { options, request, requestId, arrivedAt, fail, clientGone }: AcceptedRequest,
): Promise<void> {
  const rejection = moderatePrompt(request.prompt, options.faults.triggerWords);
  if (rejection) return fail(rejection);

  const kind = ctx.faults.next();
  const fault = kind === undefined ? undefined : FAULT_CATALOGUE[kind];
  if (fault?.type === 'error' && !fault.afterLatency) return fail(fault);

  const seed = request.seed ?? ctx.rng.intBetween(0, MAX_SEED);
  const waitMs =
    fault?.type === 'slow'
      ? options.faults.slowMs
      : sampleLatencyMs(ctx.rng, options.latency, request.promptExtend);
  if (!(await sleep(waitMs, ctx.shutdown))) return;

  if (fault?.type === 'error') return fail(fault);
  if (fault?.type === 'drop') {
    ctx.stats.count('dropped');
    req.socket.destroy();
    return;
  }
  if (fault?.type === 'gateway') {
    ctx.stats.error(`Gateway${fault.status}`);
    if (!clientGone()) sendGatewayPage(res, fault.status);
    return;
  }

  ctx.stats.billed(imagePriceMicroUsd(options.region, request.promptExtend));
  if (fault?.type === 'dropAfterBilling') {
    ctx.stats.count('dropped');
    req.socket.destroy();
    return;
  }
  if (clientGone()) {
    ctx.stats.count('clientDisconnects');
    return;
  }

  const nowMs = Date.now();
  const imageUrl = ctx.signer.sign(
    ctx.baseUrl,
    { promptHash: hashPrompt(request.prompt), seed, width: request.width, height: request.height },
    requestId,
    expiresAt(nowMs, options.imageTtlMs),
    new Date(nowMs),
  );
  const body = JSON.stringify(
    buildSuccessBody({
      requestId,
      imageUrl,
      prompt: request.prompt,
      width: request.width,
      height: request.height,
      extended: request.promptExtend ? extendPrompt(request.prompt) : undefined,
    }),
  );
  res.writeHead(200, {
    'content-type': 'application/json',
    'content-length': Buffer.byteLength(body),
    'x-request-id': requestId,
    ...GATEWAY_HEADERS,
    'req-cost-time': String(Math.round(performance.now() - arrivedAt)),
  });
  res.end(body);
}

function isJsonContentType(value: string | undefined): boolean {
  return value?.split(';')[0]?.trim().toLowerCase() === 'application/json';
}
