import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { errorBodySchema, readGenerationOutput } from './dashscope-response.js';

const CAPTURE = new URL('./fixtures/multimodal-generation-200.json', import.meta.url);
const SGP_URL =
  'https://dashscope-result-sgp.oss-ap-southeast-1.aliyuncs.com/1d/ab/20260801/xxxx/2f6c...e1.png?Expires=1785000000&OSSAccessKeyId=LTAI...&Signature=abc%2Bdef%3D';
const BJ_URL = 'https://dashscope-result-bj.oss-cn-beijing.aliyuncs.com/.../x.png?Expires=...&OSSAccessKeyId=...&Signature=...';
const REWRITTEN =
  'A photorealistic close-up of a fluffy orange tabby cat sitting upright ... soft window light, shallow depth of field.';
const REASONING = 'The user wants a cheerful, realistic orange cat. I should specify pose, lighting, lens ...';

/** Reference §2.2: prompt_extend=false. */
function documentedPlainBody() {
  return {
    output: {
      choices: [
        {
          finish_reason: 'stop',
          message: {
            role: 'assistant',
            content: [{ image: SGP_URL }, { text: 'A sitting orange cat, happy, realistic' }],
            reasoning_content: '',
          },
        },
      ],
    },
    usage: { width: 1024, height: 1536, image_count: 1, input_tokens: 0, output_tokens: 0, total_tokens: 0 },
    request_id: 'abf1645b-b630-433a-92f6-0123456789ab',
  };
}

/** Reference §2.3: prompt_extend=true. */
function documentedExtendedBody() {
  return {
    output: {
      choices: [
        {
          finish_reason: 'stop',
          message: { role: 'assistant', content: [{ image: BJ_URL }, { text: REWRITTEN }], reasoning_content: REASONING },
        },
      ],
    },
    usage: {
      width: 1024,
      height: 1536,
      image_count: 1,
      input_tokens: 310,
      output_tokens: 420,
      output_tokens_details: { reasoning_tokens: 260 },
      total_tokens: 730,
    },
    request_id: '7c1e9a52-...',
  };
}

describe('readGenerationOutput', () => {
  it('reads the real qwen-image-max capture as is', () => {
    const body: unknown = JSON.parse(readFileSync(CAPTURE, 'utf8'));
    expect(readGenerationOutput(body, 'the prompt we sent', 'header-id')).toEqual({
      imageUrl:
        'https://dashscope-7c2c.oss-cn-shanghai.aliyuncs.com/7d/93/20260611/d23adf3d/5795d646-7395-91d2-85d7-34d8b99a3d8d233.png?Expires=1781778573&OSSAccessKeyId=LTAI5tPxpiCM2hjmWrFXrym1&Signature=xPaXRQTMMBoevvHa%2FY50sWAlDrM%3D',
      usedPrompt: 'the prompt we sent',
      reasoning: undefined,
      width: 1664,
      height: 928,
      requestId: '5795d646-7395-91d2-85d7-34d8b99a3d8d',
    });
  });

  it('reads the documented prompt_extend=false shape, echoing the prompt and no reasoning', () => {
    expect(readGenerationOutput(documentedPlainBody(), 'sent prompt', undefined)).toEqual({
      imageUrl: SGP_URL,
      usedPrompt: 'A sitting orange cat, happy, realistic',
      reasoning: undefined,
      width: 1024,
      height: 1536,
      requestId: 'abf1645b-b630-433a-92f6-0123456789ab',
    });
  });

  it('reads the documented prompt_extend=true shape with the rewritten prompt and reasoning', () => {
    expect(readGenerationOutput(documentedExtendedBody(), 'sent prompt', undefined)).toMatchObject({
      imageUrl: BJ_URL,
      usedPrompt: REWRITTEN,
      reasoning: REASONING,
      width: 1024,
      height: 1536,
      requestId: '7c1e9a52-...',
    });
  });

  it('finds the image and text by key when the content order is reversed', () => {
    const body = documentedExtendedBody();
    body.output.choices[0]?.message.content.reverse();
    expect(readGenerationOutput(body, 'sent', undefined)).toMatchObject({ imageUrl: BJ_URL, usedPrompt: REWRITTEN });
  });

  it('tolerates unknown fields at every level', () => {
    const body = {
      ...documentedPlainBody(),
      extra: { anything: true },
      output: {
        task_metric: { TOTAL: 1, SUCCEEDED: 1, FAILED: 0 },
        choices: [
          {
            finish_reason: 'stop',
            index: 0,
            message: { role: 'assistant', content: [{ image: SGP_URL, format: 'png' }, { type: 'note', note: 'x' }, 'stray'], reasoning_content: null },
          },
        ],
      },
    };
    expect(readGenerationOutput(body, 'sent', undefined)).toMatchObject({ imageUrl: SGP_URL, usedPrompt: 'sent', reasoning: undefined });
  });

  it('falls back to the sent prompt when the text is empty', () => {
    const body = documentedPlainBody();
    body.output.choices[0]!.message.content = [{ image: SGP_URL }, { text: '' }];
    expect(readGenerationOutput(body, 'sent prompt', undefined)).toMatchObject({ usedPrompt: 'sent prompt' });
  });

  it('uses the x-request-id header when the body has no request_id', () => {
    const { request_id: _omit, ...body } = documentedPlainBody();
    expect(readGenerationOutput(body, 'sent', 'from-header')).toMatchObject({ requestId: 'from-header' });
  });

  it('leaves width and height undefined without usage', () => {
    const { usage: _omit, ...body } = documentedPlainBody();
    expect(readGenerationOutput(body, 'sent', undefined)).toMatchObject({ width: undefined, height: undefined, imageUrl: SGP_URL });
  });

  it('uses the first image when there are several', () => {
    const body = documentedPlainBody();
    body.output.choices[0]!.message.content = [{ text: 't' }, { image: 'https://a.aliyuncs.com/1.png' }, { image: 'https://a.aliyuncs.com/2.png' }];
    expect(readGenerationOutput(body, 'sent', undefined)).toMatchObject({ imageUrl: 'https://a.aliyuncs.com/1.png' });
  });

  const withoutImage: Array<[string, unknown]> = [
    ['content with text only', { output: { choices: [{ message: { content: [{ text: 'only text' }] } }] } }],
    ['empty content', { output: { choices: [{ message: { content: [] } }] } }],
    ['an empty image URL', { output: { choices: [{ message: { content: [{ image: '' }] } }] } }],
    ['an image that is not a string', { output: { choices: [{ message: { content: [{ image: 42 }] } }] } }],
    ['no choices', { output: { choices: [] } }],
    ['no output', { request_id: 'x' }],
    ['an error body', { code: 'InvalidParameter', message: 'bad', request_id: 'x' }],
    ['null', null],
    ['a string', '<html>Bad Gateway</html>'],
    ['an array', []],
  ];

  it.each(withoutImage)('explains a body with %s instead of throwing', (_what, body) => {
    const result = readGenerationOutput(body, 'sent', undefined);
    expect(typeof result).toBe('string');
    expect((result as string).length).toBeGreaterThan(10);
  });

  it('says where the image was expected when the shape is right but the image is missing', () => {
    expect(readGenerationOutput({ output: { choices: [{ message: { content: [{ text: 'x' }] } }] } }, 'sent', undefined)).toBe(
      'success body has no image URL in output.choices[0].message.content',
    );
  });

  it('names the failing path when the shape is wrong', () => {
    expect(readGenerationOutput({ output: { choices: [] } }, 'sent', undefined)).toMatch(/output\.choices/);
  });
});

describe('errorBodySchema', () => {
  it('reads the real 401 capture', () => {
    const body: unknown = JSON.parse(readFileSync(new URL('auth-error-401.json', CAPTURE), 'utf8'));
    expect(errorBodySchema.parse(body)).toEqual({
      code: 'InvalidApiKey',
      message: 'Invalid API-key provided.',
      request_id: 'a1c0561c-1dfe-98a6-a62f-983577b8bc5e',
    });
  });

  it('accepts a numeric code and a msg field, and tolerates unknown fields', () => {
    expect(errorBodySchema.safeParse({ code: 500, msg: 'x', extra: 1 }).success).toBe(true);
  });
});
