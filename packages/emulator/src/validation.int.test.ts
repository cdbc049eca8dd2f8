import { describe, expect, it } from 'vitest';
import type { ErrorBody } from './test-helpers.js';
import { generate, requestBody, startEmulator } from './test-helpers.js';
import { GENERATION_PATH } from './handle-generation.js';

/** Asserts the flat DashScope error shape and returns it. */
async function expectError(res: Response, status: number, code: string, message?: string | RegExp): Promise<ErrorBody> {
  expect(res.status).toBe(status);
  expect(res.headers.get('content-type')).toBe('application/json');
  const body = (await res.json()) as ErrorBody;
  expect(Object.keys(body).sort()).toEqual(['code', 'message', 'request_id']);
  expect(body.code).toBe(code);
  if (typeof message === 'string') expect(body.message).toBe(message);
  else if (message) expect(body.message).toMatch(message);
  expect(res.headers.get('x-request-id')).toBe(body.request_id);
  return body;
}

const withMessages = (messages: unknown): object => ({ model: 'z-image-turbo', input: { messages } });

describe('authentication', () => {
  const INVALID = 'Invalid API-key provided.';

  it.each([
    ['no key at all', {}],
    ['a key without Bearer', { authorization: 'sk-test' }],
    ['an empty Bearer', { authorization: 'Bearer ' }],
    ['a key not starting with sk-', { authorization: 'Bearer pk-test' }],
    ['a bare sk- prefix', { authorization: 'Bearer sk-' }],
    ['a bad X-DashScope-ApiKey', { 'x-dashscope-apikey': 'nope' }],
  ])('rejects %s with 401 InvalidApiKey', async (_name, headers: Record<string, string>) => {
    const emulator = await startEmulator();
    const res = await fetch(emulator.url + GENERATION_PATH, {
      method: 'POST',
      headers: { 'content-type': 'application/json', ...headers },
      body: JSON.stringify(requestBody()),
    });
    await expectError(res, 401, 'InvalidApiKey', INVALID);
    expect(emulator.stats()).toMatchObject({ requests: 1, accepted: 0, errorsByCode: { InvalidApiKey: 1 } });
  });

  it('accepts only the configured keys when apiKeys is set', async () => {
    const emulator = await startEmulator({ apiKeys: ['sk-right'] });
    await expectError(await generate(emulator, requestBody(), { authorization: 'Bearer sk-wrong' }), 401, 'InvalidApiKey', INVALID);
    expect((await generate(emulator, requestBody(), { authorization: 'Bearer sk-right' })).status).toBe(200);
  });

  it('checks the key before anything else, even a broken body', async () => {
    const emulator = await startEmulator();
    await expectError(await generate(emulator, '{not json', { authorization: 'Bearer x' }), 401, 'InvalidApiKey');
  });
});

describe('routing and headers', () => {
  it('answers 404 with a flat JSON error on other paths', async () => {
    const emulator = await startEmulator();
    const res = await fetch(`${emulator.url}/api/v1/services/aigc/text2image/image-synthesis`, { method: 'POST' });
    await expectError(res, 404, 'NotFound');
    expect(emulator.stats().requests).toBe(0);
  });

  it('answers 405 to other methods on the generation path', async () => {
    const emulator = await startEmulator();
    const res = await fetch(emulator.url + GENERATION_PATH);
    await expectError(res, 405, 'MethodNotAllowed');
    expect(res.headers.get('allow')).toBe('POST');
  });

  it('refuses X-DashScope-Async: enable with 403 AccessDenied', async () => {
    const emulator = await startEmulator();
    const res = await generate(emulator, requestBody(), { 'x-dashscope-async': 'enable' });
    await expectError(res, 403, 'AccessDenied', 'current user api does not support asynchronous calls.');
  });

  it('requires a JSON content type', async () => {
    const emulator = await startEmulator();
    const res = await generate(emulator, JSON.stringify(requestBody()), { 'content-type': 'text/plain' });
    await expectError(res, 400, 'InvalidParameter');
  });

  it('rejects a body that is not JSON', async () => {
    const emulator = await startEmulator();
    const message = 'Required body invalid, please check the request body format.';
    await expectError(await generate(emulator, '{"model": "z-image-turbo",'), 400, 'InvalidParameter', message);
    await expectError(await generate(emulator, '[1,2]'), 400, 'InvalidParameter', message);
  });

  it('rejects a body over the size limit with 400', async () => {
    const emulator = await startEmulator({ maxBodyBytes: 1000 });
    const res = await generate(emulator, requestBody('x'.repeat(2000)));
    await expectError(res, 400, 'InvalidParameter', /too large/);
    // The connection stays usable: the oversized body was drained, not cut.
    expect((await generate(emulator)).status).toBe(200);
  });
});

describe('body validation', () => {
  it('rejects a missing model with BadRequest.EmptyModel', async () => {
    const emulator = await startEmulator();
    await expectError(await generate(emulator, { input: {} }), 400, 'BadRequest.EmptyModel');
  });

  it('rejects another model with InvalidParameter "Model not exist."', async () => {
    const emulator = await startEmulator();
    await expectError(await generate(emulator, { ...requestBody(), model: 'wanx-v1' }), 400, 'InvalidParameter', 'Model not exist.');
  });

  it('rejects a missing input with BadRequest.EmptyInput', async () => {
    const emulator = await startEmulator();
    await expectError(await generate(emulator, { model: 'z-image-turbo' }), 400, 'BadRequest.EmptyInput');
  });

  const ROLE_MESSAGE = 'Role must be user or assistant and Content length must be greater than 0';
  const user = (content: unknown): object => ({ role: 'user', content });

  it.each([
    ['no messages', undefined, /input\.messages/],
    ['zero messages', [], /input\.messages/],
    ['two messages', [user([{ text: 'a' }]), user([{ text: 'b' }])], /exactly 1 message/],
    ['role system', [{ role: 'system', content: [{ text: 'a' }] }], ROLE_MESSAGE],
    ['role assistant', [{ role: 'assistant', content: [{ text: 'a' }] }], /must be user/],
    ['content not an array', [user('a cat')], ROLE_MESSAGE],
    ['empty content', [user([])], ROLE_MESSAGE],
    ['two content items', [user([{ text: 'a' }, { text: 'b' }])], /exactly one text/],
    ['an image item instead of text', [user([{ image: 'http://x/y.png' }])], /content\[0\]\.text/],
    ['a non-string text', [user([{ text: 42 }])], /content\[0\]\.text/],
    ['an empty text', [user([{ text: '' }])], ROLE_MESSAGE],
    ['a whitespace text', [user([{ text: ' \n\t ' }])], ROLE_MESSAGE],
  ])('rejects %s with InvalidParameter', async (_name, messages, message) => {
    const emulator = await startEmulator();
    await expectError(await generate(emulator, withMessages(messages)), 400, 'InvalidParameter', message);
  });

  it.each([
    ['size with x', { size: '1024x1024' }],
    ['size as a number', { size: 1024 }],
    ['size below 512*512 pixels', { size: '511*512' }],
    ['size above 2048*2048 pixels', { size: '2048*2049' }],
    ['a fractional seed', { seed: 1.5 }],
    ['a negative seed', { seed: -1 }],
    ['a seed above 2^31-1', { seed: 2147483648 }],
    ['a string seed', { seed: '42' }],
    ['a non-boolean prompt_extend', { prompt_extend: 'true' }],
    ['parameters that are not an object', 'fast'],
  ])('rejects %s with InvalidParameter', async (_name, parameters) => {
    const emulator = await startEmulator();
    const body = { ...requestBody(), parameters };
    await expectError(await generate(emulator, body), 400, 'InvalidParameter');
    expect(emulator.stats()).toMatchObject({ imagesGenerated: 0, accepted: 0 });
  });

  it.each([{ n: 2 }, { num_images_per_prompt: 4 }])('rejects %o with "num_images_per_prompt must be 1"', async (parameters) => {
    const emulator = await startEmulator();
    await expectError(await generate(emulator, requestBody('x', parameters)), 400, 'InvalidParameter', 'num_images_per_prompt must be 1');
  });

  it('accepts the pixel-count bounds and extreme aspect ratios', async () => {
    const emulator = await startEmulator();
    for (const size of ['512*512', '2048*2048', '2048*1152', '4096*64']) {
      const res = await generate(emulator, requestBody('x', { size, seed: 0 }));
      expect(res.status, size).toBe(200);
    }
    expect((await generate(emulator, requestBody('x', { seed: 2147483647 }))).status).toBe(200);
  });
});
