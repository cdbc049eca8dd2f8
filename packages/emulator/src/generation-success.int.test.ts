import { describe, expect, it } from 'vitest';
import { GENERATION_PATH } from './handle-generation.js';
import { generate, generateOk, imageUrlOf, pngSize, requestBody, startEmulator } from './test-helpers.js';

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

describe('successful generation', () => {
  it('answers prompt_extend=false with the documented body, headers and zeroed usage', async () => {
    const emulator = await startEmulator();
    const res = await generate(emulator, requestBody('A red fox', { size: '1024*1024', seed: 42, prompt_extend: false }));
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toBe('application/json');
    expect(res.headers.get('x-dashscope-call-gateway')).toBe('true');
    expect(Number(res.headers.get('req-cost-time'))).toBeGreaterThanOrEqual(0);
    expect(res.headers.get('retry-after')).toBeNull();
    const body = (await res.json()) as Record<string, unknown>;
    expect(body).toEqual({
      output: {
        choices: [
          {
            finish_reason: 'stop',
            message: {
              role: 'assistant',
              content: [{ image: expect.any(String) }, { text: 'A red fox' }],
              reasoning_content: '',
            },
          },
        ],
      },
      usage: { width: 1024, height: 1024, image_count: 1, input_tokens: 0, output_tokens: 0, total_tokens: 0 },
      request_id: expect.stringMatching(UUID),
    });
    expect(res.headers.get('x-request-id')).toBe(body['request_id']);
    const image = new URL(imageUrlOf(body as never));
    expect(image.origin).toBe(emulator.url);
    expect(image.pathname).toMatch(/^\/oss\/.+\/1024x1024-s42-[0-9a-f]{16}\.png$/);
    expect([...image.searchParams.keys()]).toEqual(['Expires', 'OSSAccessKeyId', 'Signature']);
    expect(Number(image.searchParams.get('Expires'))).toBeGreaterThan(Date.now() / 1000 + 23 * 3600);
  });

  it('answers prompt_extend=true with a rewritten prompt, reasoning and token usage', async () => {
    const emulator = await startEmulator();
    const body = await generateOk(emulator, requestBody('A red fox', { prompt_extend: true }));
    const message = body.output.choices[0]?.message;
    const text = message?.content.find((item) => item.text !== undefined)?.text ?? '';
    expect(text.startsWith('A red fox')).toBe(true);
    expect(text.length).toBeGreaterThan('A red fox'.length);
    expect(message?.reasoning_content.length).toBeGreaterThan(0);
    const usage = body.usage as Record<string, number> & { output_tokens_details: { reasoning_tokens: number } };
    expect(usage['width']).toBe(1024);
    expect(usage['height']).toBe(1536);
    expect(usage['input_tokens']).toBeGreaterThan(0);
    expect(usage['output_tokens']).toBeGreaterThan(0);
    expect(usage.output_tokens_details.reasoning_tokens).toBeGreaterThan(0);
    expect(usage['total_tokens']).toBe((usage['input_tokens'] ?? 0) + (usage['output_tokens'] ?? 0));

    const again = await generateOk(emulator, requestBody('A red fox', { prompt_extend: true }));
    expect(again.output.choices[0]?.message.content[1]?.text).toBe(text);
  });

  it('rewrites Chinese prompts with Chinese additions', async () => {
    const emulator = await startEmulator();
    const body = await generateOk(emulator, requestBody('一只坐着的橘猫', { prompt_extend: true }));
    const text = body.output.choices[0]?.message.content[1]?.text ?? '';
    expect(text.startsWith('一只坐着的橘猫，')).toBe(true);
    expect(text).toMatch(/[\u4e00-\u9fff]{4,}。$/);
    expect(body.output.choices[0]?.message.reasoning_content).toMatch(/[\u4e00-\u9fff]/);
  });

  it('serves a real PNG of the requested size, identical for the same prompt, seed and size', async () => {
    const emulator = await startEmulator();
    const params = { size: '832*1248', seed: 7 };
    const first = await generateOk(emulator, requestBody('A lighthouse at dusk', params));
    const second = await generateOk(emulator, requestBody('A lighthouse at dusk', params));
    const other = await generateOk(emulator, requestBody('A lighthouse at dusk', { ...params, seed: 8 }));
    expect(imageUrlOf(first)).not.toBe(imageUrlOf(second));

    const download = async (url: string): Promise<Buffer> => {
      const res = await fetch(url);
      expect(res.status).toBe(200);
      expect(res.headers.get('content-type')).toBe('image/png');
      const bytes = Buffer.from(await res.arrayBuffer());
      expect(Number(res.headers.get('content-length'))).toBe(bytes.length);
      return bytes;
    };
    const a = await download(imageUrlOf(first));
    const b = await download(imageUrlOf(second));
    const c = await download(imageUrlOf(other));
    expect(pngSize(a)).toEqual({ width: 832, height: 1248 });
    expect(a[25]).toBe(2); // IHDR colour type: RGB
    expect(a.equals(b)).toBe(true);
    expect(a.equals(c)).toBe(false);
    expect(emulator.stats().downloads).toBe(3);
  });

  it('uses the default size 1024*1536 and a random seed in range when none is given', async () => {
    const emulator = await startEmulator();
    const body = await generateOk(emulator);
    expect(body.usage).toMatchObject({ width: 1024, height: 1536 });
    const seed = Number(/-s(\d+)-/.exec(new URL(imageUrlOf(body)).pathname)?.[1]);
    expect(Number.isInteger(seed) && seed >= 0 && seed <= 2147483647).toBe(true);
  });

  it('silently truncates a prompt to 800 code points and echoes the truncated text', async () => {
    const emulator = await startEmulator();
    // 900 CJK characters plus astral emoji around the cut: code points, not UTF-16 units, count.
    const prompt = `${'猫'.repeat(799)}😺${'狗'.repeat(100)}`;
    const body = await generateOk(emulator, requestBody(prompt));
    const text = body.output.choices[0]?.message.content[1]?.text ?? '';
    expect(Array.from(text)).toHaveLength(800);
    expect(text).toBe(`${'猫'.repeat(799)}😺`);

    const exact = '猫'.repeat(800);
    const same = await generateOk(emulator, requestBody(exact));
    expect(same.output.choices[0]?.message.content[1]?.text).toBe(exact);
  });

  it('bills each success at the regional list price', async () => {
    const emulator = await startEmulator({ region: 'beijing' });
    await generateOk(emulator);
    await generateOk(emulator, requestBody('x', { prompt_extend: true }));
    expect(emulator.stats()).toMatchObject({ imagesGenerated: 2, billedUsd: 0.04302, accepted: 2, requests: 2 });
  });

  it('accepts the key in X-DashScope-ApiKey and a charset on the content type', async () => {
    const emulator = await startEmulator();
    const res = await fetch(emulator.url + GENERATION_PATH, {
      method: 'POST',
      headers: { 'x-dashscope-apikey': 'sk-alt', 'content-type': 'application/json; charset=utf-8' },
      body: JSON.stringify(requestBody()),
    });
    expect(res.status).toBe(200);
  });

  it('ignores unknown parameters and accepts n=1', async () => {
    const emulator = await startEmulator();
    await generateOk(emulator, requestBody('x', { n: 1, watermark: false, style: '<auto>' }));
  });

  it('waits the configured latency before answering', async () => {
    const emulator = await startEmulator({ latency: { minMs: 150, maxMs: 200 } });
    const started = performance.now();
    await generateOk(emulator);
    expect(performance.now() - started).toBeGreaterThanOrEqual(145);
  });
});
