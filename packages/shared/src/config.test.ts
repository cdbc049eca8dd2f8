import { describe, expect, it } from 'vitest';
import { apiEnvSchema, dashscopeBaseUrl, loadConfig, producerEnvSchema, REGION_BASE_URLS, workerEnvSchema } from './config.js';
import { isAppError, type AppError } from './errors.js';

function configError(env: Record<string, string | undefined>): AppError {
  try {
    loadConfig(workerEnvSchema, env);
  } catch (error) {
    if (isAppError(error)) return error;
    throw error;
  }
  throw new Error('expected loadConfig to throw');
}

describe('loadConfig(workerEnvSchema)', () => {
  it('applies the defaults to an empty environment', () => {
    const config = loadConfig(workerEnvSchema, {});
    expect(config).toMatchObject({
      REDIS_URL: 'redis://127.0.0.1:6379',
      STORAGE_URL: 'file:./output',
      ZIMAGE_RPM: 120,
      DASHSCOPE_REGION: 'singapore',
      LOG_LEVEL: 'info',
      ZIMAGE_S3_FORCE_PATH_STYLE: false,
      ZIMAGE_CONCURRENCY: 8,
    });
    expect(config.DASHSCOPE_API_KEY).toBeUndefined();
    expect(config.ZIMAGE_IMAGE_HOSTS).toBeUndefined();
  });

  it('converts whole numbers', () => {
    expect(loadConfig(workerEnvSchema, { ZIMAGE_RPM: '60', ZIMAGE_CONCURRENCY: '2' })).toMatchObject({ ZIMAGE_RPM: 60, ZIMAGE_CONCURRENCY: 2 });
  });

  it('treats empty and blank strings as unset', () => {
    const config = loadConfig(workerEnvSchema, {
      REDIS_URL: '',
      STORAGE_URL: '  ',
      ZIMAGE_RPM: '',
      DASHSCOPE_REGION: '',
      DASHSCOPE_API_KEY: '',
      DASHSCOPE_BASE_URL: '',
      ZIMAGE_S3_FORCE_PATH_STYLE: '',
      ZIMAGE_IMAGE_HOSTS: ' ',
    });
    expect(config).toMatchObject({ REDIS_URL: 'redis://127.0.0.1:6379', STORAGE_URL: 'file:./output', ZIMAGE_RPM: 120, DASHSCOPE_REGION: 'singapore' });
    expect(config.DASHSCOPE_API_KEY).toBeUndefined();
    expect(config.DASHSCOPE_BASE_URL).toBeUndefined();
    expect(config.ZIMAGE_IMAGE_HOSTS).toBeUndefined();
  });

  it('reports several bad variables in ONE CONFIG_INVALID error that names every one', () => {
    const error = configError({ REDIS_URL: 'http://localhost', ZIMAGE_RPM: 'fast', DASHSCOPE_REGION: 'mars', STORAGE_URL: 'ftp://x', ZIMAGE_CONCURRENCY: '0' });
    expect(error.code).toBe('CONFIG_INVALID');
    expect(error.retry).toBe('never');
    for (const name of ['REDIS_URL', 'ZIMAGE_RPM', 'DASHSCOPE_REGION', 'STORAGE_URL', 'ZIMAGE_CONCURRENCY']) expect(error.message).toContain(name);
    expect([...(error.details['variables'] as string[])].sort()).toEqual(['DASHSCOPE_REGION', 'REDIS_URL', 'STORAGE_URL', 'ZIMAGE_CONCURRENCY', 'ZIMAGE_RPM']);
  });

  it('quotes the bad value of an ordinary variable, to help fix it', () => {
    expect(configError({ ZIMAGE_RPM: 'fast' }).message).toContain('"fast"');
  });

  it.each([
    ['ZIMAGE_RPM', '0', 'at least 1'],
    ['ZIMAGE_RPM', '100001', 'at most 100000'],
    ['ZIMAGE_RPM', '1.5', 'whole number'],
    ['ZIMAGE_RPM', '-5', 'whole number'],
    ['LOG_LEVEL', 'verbose', 'must be one of'],
    ['ZIMAGE_PREFIX', 'a:b', 'must match'],
    ['DASHSCOPE_BASE_URL', 'ftp://x.example', 'http(s)'],
    ['AWS_ENDPOINT_URL_S3', 'not a url', 'http(s)'],
  ])('rejects %s=%j saying why', (name, value, reason) => {
    const error = configError({ [name]: value });
    expect(error.message).toContain(name);
    expect(error.message).toContain(reason);
  });

  it('never shows the value of DASHSCOPE_API_KEY, even when it is invalid', () => {
    const tooShortKey = 'sk-q7z'; // fails the 8-character rule
    const error = configError({ DASHSCOPE_API_KEY: tooShortKey, ZIMAGE_RPM: 'x' });
    expect(error.message).toContain('DASHSCOPE_API_KEY');
    expect(error.message).toContain('too short');
    expect(error.message).not.toContain(tooShortKey);
    expect(JSON.stringify(error.details)).not.toContain(tooShortKey);
  });

  it.each(['AWS_SECRET_ACCESS_KEY', 'AWS_ACCESS_KEY_ID'])('never shows the value of %s in the message', (name) => {
    const secret = 'wJalrXUtnFEMI-secret-value';
    const error = configError({ [name]: secret, ZIMAGE_RPM: 'x' });
    expect(error.message).not.toContain(secret);
  });

  it('accepts an API key of 8 characters or more', () => {
    expect(loadConfig(workerEnvSchema, { DASHSCOPE_API_KEY: 'sk-12345' }).DASHSCOPE_API_KEY).toBe('sk-12345');
  });

  it.each([
    ['true', true],
    ['1', true],
    ['yes', true],
    ['false', false],
    ['0', false],
    ['no', false],
  ])('reads ZIMAGE_S3_FORCE_PATH_STYLE=%j as %s', (value, expected) => {
    expect(loadConfig(workerEnvSchema, { ZIMAGE_S3_FORCE_PATH_STYLE: value }).ZIMAGE_S3_FORCE_PATH_STYLE).toBe(expected);
  });

  it.each(['maybe', 'TRUE', 'on'])('rejects ZIMAGE_S3_FORCE_PATH_STYLE=%j', (value) => {
    expect(configError({ ZIMAGE_S3_FORCE_PATH_STYLE: value }).message).toContain('ZIMAGE_S3_FORCE_PATH_STYLE');
  });

  it('splits ZIMAGE_IMAGE_HOSTS on commas, trimming, lowercasing and dropping empty entries', () => {
    expect(loadConfig(workerEnvSchema, { ZIMAGE_IMAGE_HOSTS: ' *.AliyunCS.com, cdn.example.com:8443,,localhost ' }).ZIMAGE_IMAGE_HOSTS).toEqual([
      '*.aliyuncs.com',
      'cdn.example.com:8443',
      'localhost',
    ]);
  });

  it.each(['http://x', 'example.com/path', 'a b.com', '*example.com'])('rejects the image host entry %j', (entry) => {
    const error = configError({ ZIMAGE_IMAGE_HOSTS: `ok.example.com,${entry}` });
    expect(error.message).toContain('ZIMAGE_IMAGE_HOSTS');
  });

  it.each(['s3://bucket/prefix', 'file:/var/images', 'file:./out'])('accepts STORAGE_URL=%j', (url) => {
    expect(loadConfig(workerEnvSchema, { STORAGE_URL: url }).STORAGE_URL).toBe(url);
  });

  it('accepts a rediss:// URL', () => {
    expect(loadConfig(workerEnvSchema, { REDIS_URL: 'rediss://:pw@redis.example:6380/1' }).REDIS_URL).toBe('rediss://:pw@redis.example:6380/1');
  });
});

describe('webhook settings', () => {
  it('defaults: Svix schedule, 15 s timeout, no secret, no exceptions, dispatcher on, stream bound 100k', () => {
    const config = loadConfig(workerEnvSchema, {});
    expect(config.ZIMAGE_WEBHOOK_RETRY_SCHEDULE).toEqual([5_000, 300_000, 1_800_000, 7_200_000, 18_000_000, 36_000_000, 36_000_000]);
    expect(config).toMatchObject({ ZIMAGE_WEBHOOK_TIMEOUT_MS: 15_000, ZIMAGE_WEBHOOK_DISPATCHER: true, ZIMAGE_WEBHOOK_ALLOWED_HOSTS: [], ZIMAGE_EVENTS_MAXLEN: 100_000 });
    expect(config.ZIMAGE_WEBHOOK_SECRET).toBeUndefined();
  });

  it('parses the schedule, the allowed hosts and the secrets', () => {
    const secret = `whsec_${Buffer.alloc(32, 7).toString('base64')}`;
    const config = loadConfig(workerEnvSchema, {
      ZIMAGE_WEBHOOK_RETRY_SCHEDULE: '100ms,1s',
      ZIMAGE_WEBHOOK_ALLOWED_HOSTS: 'LocalHost, 127.0.0.1:8080',
      ZIMAGE_WEBHOOK_SECRET: secret,
    });
    expect(config.ZIMAGE_WEBHOOK_RETRY_SCHEDULE).toEqual([100, 1000]);
    expect(config.ZIMAGE_WEBHOOK_ALLOWED_HOSTS).toEqual(['localhost', '127.0.0.1:8080']);
    expect(config.ZIMAGE_WEBHOOK_SECRET?.map((k) => k.length)).toEqual([32]);
  });

  it('names each bad webhook variable, and never quotes the secret', () => {
    const error = configError({ ZIMAGE_WEBHOOK_RETRY_SCHEDULE: '5 minutes', ZIMAGE_WEBHOOK_SECRET: 'hunter2-not-a-whsec', ZIMAGE_EVENTS_MAXLEN: '10' });
    expect(error.message).toContain('ZIMAGE_WEBHOOK_RETRY_SCHEDULE: "5 minutes" is not a delay');
    expect(error.message).toContain('ZIMAGE_WEBHOOK_SECRET: the secret must start with whsec_');
    expect(error.message).toContain('ZIMAGE_EVENTS_MAXLEN: must be at least 1000');
    expect(error.message).not.toContain('hunter2');
  });
});

describe('loadConfig(producerEnvSchema)', () => {
  it('applies its own defaults and ignores worker variables', () => {
    const config = loadConfig(producerEnvSchema, { ZIMAGE_RPM: 'not checked here' });
    expect(config).toMatchObject({ ZIMAGE_MAX_ATTEMPTS: 6, ZIMAGE_RETENTION_HOURS: 168, REDIS_URL: 'redis://127.0.0.1:6379' });
  });

  it('takes ZIMAGE_SCHEDULE_FILES_DIR only as an absolute path (every process must mean the same folder)', () => {
    expect(loadConfig(producerEnvSchema, { ZIMAGE_SCHEDULE_FILES_DIR: '/srv/schedules' }).ZIMAGE_SCHEDULE_FILES_DIR).toBe('/srv/schedules');
    expect(loadConfig(producerEnvSchema, {}).ZIMAGE_SCHEDULE_FILES_DIR).toBeUndefined();
    expect(() => loadConfig(producerEnvSchema, { ZIMAGE_SCHEDULE_FILES_DIR: './schedules' })).toThrow(/ZIMAGE_SCHEDULE_FILES_DIR.*must be an absolute path/);
  });
});

describe('dashscopeBaseUrl', () => {
  it('uses the region when no base URL is set', () => {
    expect(dashscopeBaseUrl({ DASHSCOPE_REGION: 'singapore', DASHSCOPE_BASE_URL: undefined })).toBe('https://dashscope-intl.aliyuncs.com');
    expect(dashscopeBaseUrl({ DASHSCOPE_REGION: 'beijing', DASHSCOPE_BASE_URL: undefined })).toBe(REGION_BASE_URLS.beijing);
    expect(REGION_BASE_URLS.beijing).toBe('https://dashscope.aliyuncs.com');
  });

  it('prefers DASHSCOPE_BASE_URL over the region and strips trailing slashes', () => {
    expect(dashscopeBaseUrl({ DASHSCOPE_REGION: 'beijing', DASHSCOPE_BASE_URL: 'http://127.0.0.1:8089/' })).toBe('http://127.0.0.1:8089');
    expect(dashscopeBaseUrl({ DASHSCOPE_REGION: 'singapore', DASHSCOPE_BASE_URL: 'https://ws-1.ap-southeast-1.maas.aliyuncs.com//' })).toBe(
      'https://ws-1.ap-southeast-1.maas.aliyuncs.com',
    );
  });

  it('works on a loaded config', () => {
    expect(dashscopeBaseUrl(loadConfig(workerEnvSchema, { DASHSCOPE_BASE_URL: 'http://localhost:9000/' }))).toBe('http://localhost:9000');
  });
});

describe('loadConfig: budgets, fair share and tenant tokens', () => {
  it('reads ZIMAGE_FAIR_SHARE, ZIMAGE_TENANT_WEIGHTS and ZIMAGE_BUDGETS', () => {
    const config = loadConfig(workerEnvSchema, {
      ZIMAGE_FAIR_SHARE: 'true',
      ZIMAGE_TENANT_WEIGHTS: 'acme=3,globex=1',
      ZIMAGE_BUDGETS: '[{"id":"daily","scope":"account","subject":"*","limitUsd":25,"period":"day"}]',
    });
    expect(config.ZIMAGE_FAIR_SHARE).toBe(true);
    expect(config.ZIMAGE_TENANT_WEIGHTS).toEqual(new Map([['acme', 3], ['globex', 1]]));
    expect(config.ZIMAGE_BUDGETS).toEqual([{ id: 'daily', scope: 'account', subject: '*', limitUsd: 25, kind: 'hard', period: 'day' }]);
    expect(loadConfig(workerEnvSchema, {})).toMatchObject({ ZIMAGE_TENANT_WEIGHTS: new Map(), ZIMAGE_BUDGETS: [] });
    // Unset leaves the fleet's setting as it is: a worker started without it does not turn it off.
    expect(loadConfig(workerEnvSchema, {}).ZIMAGE_FAIR_SHARE).toBeUndefined();
    expect(loadConfig(workerEnvSchema, { ZIMAGE_FAIR_SHARE: 'false' }).ZIMAGE_FAIR_SHARE).toBe(false);
  });

  it('names the variable, the entry and the rule for bad weights and budgets, in one error', () => {
    const error = configError({ ZIMAGE_TENANT_WEIGHTS: 'acme=0', ZIMAGE_BUDGETS: '[{"id":"daily","scope":"account","subject":"*","limitUsd":-1}]', ZIMAGE_FAIR_SHARE: 'sometimes' });
    expect(error.message).toContain('ZIMAGE_TENANT_WEIGHTS: pair 1 ("acme=0"): weight must be a whole number from 1 to 1000');
    expect(error.message).toMatch(/ZIMAGE_BUDGETS: .*limitUsd.*must be more than 0/);
    expect(error.message).toContain('ZIMAGE_FAIR_SHARE: must be true or false');
  });

  it('reads ZIMAGE_API_TENANT_TOKENS and never shows a token in its errors', () => {
    const env = { ZIMAGE_API_TOKENS: 'operator-token-0123456789' };
    expect(loadConfig(apiEnvSchema, { ...env, ZIMAGE_API_TENANT_TOKENS: 'acme=acme-token-0123456789abc' }).ZIMAGE_API_TENANT_TOKENS).toEqual(new Map([['acme-token-0123456789abc', 'acme']]));
    let message = '';
    try {
      loadConfig(apiEnvSchema, { ...env, ZIMAGE_API_TENANT_TOKENS: 'acme=short-secret,glo bex=globex-token-0123456789,initech' });
    } catch (error) {
      message = (error as Error).message;
    }
    expect(message).toContain('ZIMAGE_API_TENANT_TOKENS: pair 1 (tenant acme): the token must be at least 16 characters');
    expect(message).toContain('pair 2 (tenant glo bex): the tenant must match');
    expect(message).toContain('pair 3: must be tenant=token');
    expect(message).not.toContain('short-secret');
    expect(message).not.toContain('globex-token');
  });
});
