import type { DashScopeError } from './error-body.js';

export const MODEL_ID = 'z-image-turbo';
/** Upstream truncates longer prompts silently (reference §1.2). Counted in code points. */
export const MAX_PROMPT_CODE_POINTS = 800;
export const DEFAULT_SIZE = '1024*1536';
export const MIN_PIXELS = 512 * 512;
export const MAX_PIXELS = 2048 * 2048;
export const MAX_SEED = 2_147_483_647;

/** A request body that passed validation, normalised. */
export interface GenerationRequest {
  /** The prompt after silent truncation to 800 code points. */
  readonly prompt: string;
  readonly width: number;
  readonly height: number;
  /** `undefined` when the client sent none; the caller picks a random one. */
  readonly seed: number | undefined;
  readonly promptExtend: boolean;
}

export type ValidationResult =
  | { readonly ok: true; readonly request: GenerationRequest }
  | { readonly ok: false; readonly error: DashScopeError };

const invalid = (message: string): ValidationResult => ({
  ok: false,
  error: { status: 400, code: 'InvalidParameter', message },
});

// Upstream's wording for a bad message (captured real 400, reference §3.1).
const BAD_MESSAGE = 'Role must be user or assistant and Content length must be greater than 0';
const missingOrInvalid = (name: string): string =>
  `Required parameter(${name}) missing or invalid, please check the request parameters.`;

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/**
 * Applies the documented rules of reference §1.2 to a parsed JSON body. Unknown fields and
 * unknown parameters are ignored, as upstream does. `null` counts as present (and invalid) except
 * where noted, because the real API's handling of `null` is unknown and strictness surfaces
 * client bugs early.
 */
export function validateRequest(body: unknown): ValidationResult {
  if (!isObject(body)) {
    return invalid('Required body invalid, please check the request body format.');
  }
  const { model, input, parameters } = body;
  if (model === undefined || model === null || model === '') {
    return {
      ok: false,
      error: {
        status: 400,
        code: 'BadRequest.EmptyModel',
        message: 'Required parameter "model" missing from request.',
      },
    };
  }
  if (model !== MODEL_ID) return invalid('Model not exist.');
  if (input === undefined || input === null) {
    return {
      ok: false,
      error: {
        status: 400,
        code: 'BadRequest.EmptyInput',
        message: 'Required input parameter missing from request.',
      },
    };
  }
  if (!isObject(input)) return invalid(missingOrInvalid('input'));

  const prompt = validateMessages(input['messages']);
  if (typeof prompt !== 'string') return prompt;

  const params = parameters === undefined ? {} : parameters;
  if (!isObject(params)) return invalid(missingOrInvalid('parameters'));
  return validateParameters(params, prompt);
}

function validateMessages(messages: unknown): string | ValidationResult {
  if (!Array.isArray(messages) || messages.length === 0) {
    return invalid(missingOrInvalid('input.messages'));
  }
  if (messages.length > 1) {
    return invalid('Only single-turn input is supported: input.messages must contain exactly 1 message.');
  }
  const message: unknown = messages[0];
  if (!isObject(message)) return invalid(BAD_MESSAGE);
  if (message['role'] !== 'user') {
    return invalid(message['role'] === 'assistant' ? 'The role of the message must be user.' : BAD_MESSAGE);
  }
  const content = message['content'];
  if (!Array.isArray(content) || content.length === 0) return invalid(BAD_MESSAGE);
  if (content.length > 1) {
    return invalid('The content of the message must contain exactly one text item.');
  }
  const item: unknown = content[0];
  if (!isObject(item) || typeof item['text'] !== 'string') {
    return invalid(missingOrInvalid('input.messages[0].content[0].text'));
  }
  const text = item['text'];
  if (text.trim().length === 0) return invalid(BAD_MESSAGE);
  return truncatePrompt(text);
}

/** Truncates to 800 Unicode code points (not UTF-16 units), never splitting a surrogate pair. */
export function truncatePrompt(text: string): string {
  const codePoints = Array.from(text);
  return codePoints.length > MAX_PROMPT_CODE_POINTS
    ? codePoints.slice(0, MAX_PROMPT_CODE_POINTS).join('')
    : text;
}

function validateParameters(params: Record<string, unknown>, prompt: string): ValidationResult {
  for (const name of ['n', 'num_images_per_prompt']) {
    if (params[name] !== undefined && params[name] !== 1) {
      return invalid('num_images_per_prompt must be 1');
    }
  }
  const size = params['size'] === undefined ? DEFAULT_SIZE : params['size'];
  const dims = typeof size === 'string' ? /^(\d+)\*(\d+)$/.exec(size) : null;
  const width = Number(dims?.[1]);
  const height = Number(dims?.[2]);
  const pixels = width * height;
  if (!dims || !(pixels >= MIN_PIXELS && pixels <= MAX_PIXELS)) {
    return invalid(
      'The size parameter is invalid: expected "width*height" with a total pixel count in ' +
        `[${MIN_PIXELS}, ${MAX_PIXELS}].`,
    );
  }
  const seed = params['seed'];
  const seedValid = typeof seed === 'number' && Number.isInteger(seed) && seed >= 0 && seed <= MAX_SEED;
  if (seed !== undefined && !seedValid) {
    return invalid(`The seed parameter is invalid: expected an integer in [0, ${MAX_SEED}].`);
  }
  const promptExtend = params['prompt_extend'];
  if (promptExtend !== undefined && typeof promptExtend !== 'boolean') {
    return invalid('The prompt_extend parameter is invalid: expected a boolean.');
  }
  return {
    ok: true,
    request: {
      prompt,
      width,
      height,
      seed: seedValid ? seed : undefined,
      promptExtend: promptExtend ?? false,
    },
  };
}
