import { describe, expect, it } from 'vitest';
import { createLogger, REDACT_PATHS, scrubSecrets } from './logger.js';

/** A pino destination that keeps every line in memory. */
function memoryDestination() {
  const lines: string[] = [];
  return {
    lines,
    write(line: string) {
      lines.push(line);
    },
    text: () => lines.join(''),
    records: () => lines.map((line) => JSON.parse(line) as Record<string, unknown>),
  };
}

describe('createLogger', () => {
  it('writes JSON lines with the level, name and message to the destination', () => {
    const destination = memoryDestination();
    createLogger({ destination, name: 'worker' }).info({ jobId: 'j1' }, 'job started');
    expect(destination.records()).toEqual([expect.objectContaining({ level: 30, name: 'worker', msg: 'job started', jobId: 'j1' })]);
  });

  it('drops lines below the level', () => {
    const destination = memoryDestination();
    const logger = createLogger({ destination, level: 'warn' });
    logger.info('quiet');
    logger.warn('loud');
    expect(destination.records().map((r) => r['msg'])).toEqual(['loud']);
  });

  it('redacts the authorization header, apiKey and config.dashscopeApiKey', () => {
    const destination = memoryDestination();
    createLogger({ destination }).info(
      {
        headers: { authorization: 'Bearer sk-secret-123456', 'content-type': 'application/json' },
        apiKey: 'sk-apikey-abcdef',
        config: { dashscopeApiKey: 'sk-config-777777', region: 'singapore' },
      },
      'calling upstream',
    );
    const text = destination.text();
    expect(text).toContain('[redacted]');
    for (const secret of ['sk-secret-123456', 'sk-apikey-abcdef', 'sk-config-777777']) expect(text).not.toContain(secret);
    const [record] = destination.records();
    expect(record).toMatchObject({
      headers: { authorization: '[redacted]', 'content-type': 'application/json' },
      apiKey: '[redacted]',
      config: { dashscopeApiKey: '[redacted]', region: 'singapore' },
    });
  });

  it.each([
    ['a nested request header', { req: { headers: { authorization: 'Bearer sk-nested-1111' } } }, 'sk-nested-1111'],
    ['an x-dashscope-apikey header', { headers: { 'x-dashscope-apikey': 'sk-xheader-2222' } }, 'sk-xheader-2222'],
    ['a nested apiKey', { client: { apiKey: 'sk-client-3333' } }, 'sk-client-3333'],
    ['the env variable name', { env: { DASHSCOPE_API_KEY: 'sk-env-4444' } }, 'sk-env-4444'],
    ['an AWS secret', { s3: { secretAccessKey: 'aws-secret-5555' } }, 'aws-secret-5555'],
  ])('redacts %s', (_what, fields, secret) => {
    const destination = memoryDestination();
    createLogger({ destination }).info(fields, 'x');
    expect(destination.text()).not.toContain(secret);
    expect(destination.text()).toContain('[redacted]');
  });

  it('scrubs a literal secret from the log message', () => {
    const destination = memoryDestination();
    createLogger({ destination, secrets: ['sk-literal-999999'] }).error('upstream said: Invalid API-key sk-literal-999999 provided');
    expect(destination.text()).not.toContain('sk-literal-999999');
    expect(destination.records()[0]?.['msg']).toBe('upstream said: Invalid API-key [redacted] provided');
  });

  it('scrubs a literal secret from fields that are not on a redact path', () => {
    const destination = memoryDestination();
    const logger = createLogger({ destination, secrets: ['sk-literal-999999', undefined] });
    logger.warn({ err: new Error('request to https://x?key=sk-literal-999999 failed'), note: 'sk-literal-999999' }, 'failed');
    expect(destination.text()).not.toContain('sk-literal-999999');
  });

  it('ignores secrets shorter than 6 characters, which would blank out ordinary words', () => {
    const destination = memoryDestination();
    createLogger({ destination, secrets: ['job'] }).info('job started');
    expect(destination.records()[0]?.['msg']).toBe('job started');
  });

  it('keeps child bindings and still redacts in children', () => {
    const destination = memoryDestination();
    createLogger({ destination }).child({ component: 'worker' }).info({ apiKey: 'sk-child-8888' }, 'x');
    expect(destination.records()[0]).toMatchObject({ component: 'worker', apiKey: '[redacted]' });
  });
});

describe('REDACT_PATHS', () => {
  it('covers the API key and AWS secret names', () => {
    expect(REDACT_PATHS).toEqual(expect.arrayContaining(['apiKey', 'headers.authorization', 'config.dashscopeApiKey', 'DASHSCOPE_API_KEY', 'AWS_SECRET_ACCESS_KEY']));
  });
});

describe('scrubSecrets', () => {
  it('replaces every occurrence of every secret', () => {
    expect(scrubSecrets('a sk-one-111 b sk-one-111 c sk-two-222', ['sk-one-111', 'sk-two-222'])).toBe('a [redacted] b [redacted] c [redacted]');
  });

  it('leaves text without secrets unchanged', () => {
    expect(scrubSecrets('nothing to hide', ['sk-one-111'])).toBe('nothing to hide');
    expect(scrubSecrets('nothing to hide', [])).toBe('nothing to hide');
  });

  it('treats secrets literally, not as patterns', () => {
    expect(scrubSecrets('key a.b+c and aXb+c', ['a.b+c'])).toBe('key [redacted] and aXb+c');
  });
});
