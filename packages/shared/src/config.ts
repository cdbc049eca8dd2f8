/**
 * Configuration from the environment, parsed once at each entry point with zod.
 *
 * Every problem is reported at once, each naming its variable. Nothing below an entry point reads
 * `process.env`; the parsed object is passed down. Secret values are never echoed in errors.
 */
import { parseBudgets, type Budget } from './budgets/budget.js';
import { parseTenantWeights, tenantIdSchema, type TenantWeights } from './fair-share/tenant-weights.js';
import { z } from 'zod';
import { AppError } from './errors.js';
import { REGIONS, type Region } from './job-result.js';
import { DEFAULT_PREFIX } from './queue-names.js';
import { DEFAULT_RETRY_SCHEDULE, parseRetrySchedule } from './webhooks/retry-schedule.js';
import { parseAllowedHosts } from './webhooks/ssrf-guard.js';
import { parseWebhookSecrets } from './webhooks/webhook-secret.js';

export const REGION_BASE_URLS: Record<Region, string> = {
  singapore: 'https://dashscope-intl.aliyuncs.com',
  beijing: 'https://dashscope.aliyuncs.com',
};

const SECRET_VARIABLES = new Set(['DASHSCOPE_API_KEY', 'AWS_SECRET_ACCESS_KEY', 'AWS_ACCESS_KEY_ID', 'ZIMAGE_WEBHOOK_SECRET', 'ZIMAGE_API_TOKENS', 'ZIMAGE_API_TENANT_TOKENS']);
const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const;

const emptyAsUndefined = (value: unknown) => (typeof value === 'string' && value.trim() === '' ? undefined : value);

const intVar = (min: number, max: number, fallback: number) =>
  z.preprocess(
    emptyAsUndefined,
    z
      .string()
      .regex(/^\d+$/, { error: `must be a whole number between ${min} and ${max}` })
      .transform(Number)
      .pipe(z.number().min(min, { error: `must be at least ${min}` }).max(max, { error: `must be at most ${max}` }))
      .default(fallback),
  );

const boolVar = (fallback: boolean) =>
  z.preprocess(
    emptyAsUndefined,
    z
      .enum(['true', 'false', '1', '0', 'yes', 'no'], { error: 'must be true or false' })
      .transform((v) => v === 'true' || v === '1' || v === 'yes')
      .default(fallback),
  );

const urlVar = (protocols: RegExp, rule: string) =>
  z.preprocess(emptyAsUndefined, z.url({ protocol: protocols, error: rule }).optional());

/**
 * Plain http would send the API key in clear text, so it is accepted only for loopback and for
 * single-label names (a docker-compose or Kubernetes service such as `http://emulator:8089`).
 */
export function insecureBaseUrlProblem(url: string): string | undefined {
  const parsed = new URL(url);
  if (parsed.protocol !== 'http:') return undefined;
  const host = parsed.hostname.replace(/^\[|\]$/g, '');
  if (['localhost', '127.0.0.1', '::1'].includes(host) || host.startsWith('127.') || !host.includes('.')) return undefined;
  return 'must be https (plain http only for loopback or a single-label service name): the API key would travel in clear text';
}

/** Variables every entry point that talks to Redis reads. */
export const baseEnvSchema = z.object({
  REDIS_URL: z.preprocess(
    emptyAsUndefined,
    z
      .url({ protocol: /^rediss?(\+cluster)?$/, error: 'must be a redis://, rediss:// or redis+cluster:// URL' })
      .default('redis://127.0.0.1:6379'),
  ),
  LOG_LEVEL: z.preprocess(emptyAsUndefined, z.enum(LOG_LEVELS, { error: `must be one of ${LOG_LEVELS.join(', ')}` }).default('info')),
  ZIMAGE_PREFIX: z.preprocess(
    emptyAsUndefined,
    z
      .string()
      .regex(/^[A-Za-z0-9_{}-]{1,32}$/, { error: 'must match [A-Za-z0-9_{}-]{1,32}' })
      .default(DEFAULT_PREFIX),
  ),
  /**
   * Where a long-running `zimage worker` or `zimage api` writes its health (Redis, storage) every
   * 10 s, for `zimage health` (the image's HEALTHCHECK). Unset: no file.
   */
  ZIMAGE_HEALTH_FILE: z.preprocess(emptyAsUndefined, z.string().startsWith('/', { error: 'must be an absolute path' }).optional()),
  /** Approximate bound of the event stream (XADD MAXLEN ~). */
  ZIMAGE_EVENTS_MAXLEN: intVar(1000, 100_000_000, 100_000),
  /** Hosts webhooks may call although they resolve to internal addresses (development only). */
  ZIMAGE_WEBHOOK_ALLOWED_HOSTS: parsedVar(parseAllowedHosts, []),
  /** Attempts per job for transient errors (throttling does not use attempts). */
  ZIMAGE_MAX_ATTEMPTS: intVar(1, 50, 6),
  /** How long finished jobs (and idempotency keys) are kept, in hours. */
  ZIMAGE_RETENTION_HOURS: intVar(1, 24 * 90, 24 * 7),
  /** The only folder scheduled pipelines may read CSV files from; unset, schedules take prompts or feeds only. */
  ZIMAGE_SCHEDULE_FILES_DIR: z.preprocess(
    emptyAsUndefined,
    z
      .string()
      .max(4096)
      // Every process (API, CLI, workers) must mean the same folder, whatever its working directory.
      .refine((path) => path.startsWith('/'), { error: 'must be an absolute path' })
      .optional(),
  ),
});

/** `acme=<token>,globex=<token>` → token → tenant. Never echoes a token in its problems. */
function parseTenantTokens(text: string): Map<string, string> {
  const byToken = new Map<string, string>();
  const problems: string[] = [];
  for (const [n, raw] of text.split(',').entries()) {
    const pair = raw.trim();
    const equals = pair.indexOf('=');
    const tenant = equals < 0 ? '' : pair.slice(0, equals).trim();
    const token = equals < 0 ? '' : pair.slice(equals + 1).trim();
    const where = `pair ${n + 1}${tenant ? ` (tenant ${tenant})` : ''}`;
    if (equals < 0) problems.push(`${where}: must be tenant=token`);
    else if (!tenantIdSchema.safeParse(tenant).success) problems.push(`${where}: the tenant must match [A-Za-z0-9_-]{1,64}`);
    else if (token.length < 16) problems.push(`${where}: the token must be at least 16 characters`);
    else if (byToken.has(token)) problems.push(`${where}: the token is also given to tenant ${byToken.get(token)}`);
    else byToken.set(token, tenant);
  }
  if (problems.length > 0) throw new TypeError(problems.join('; '));
  return byToken;
}

function tenantWeightsOrThrow(text: string): TenantWeights {
  const parsed = parseTenantWeights(text);
  if (!parsed.ok) throw new TypeError(parsed.problems.join('; '));
  return parsed.weights;
}

/** A variable parsed by `parse`, whose TypeError message becomes the problem reported. */
function parsedVar<T>(parse: (value: string) => T, fallback: T) {
  return z.preprocess(
    emptyAsUndefined,
    z
      .string()
      .transform((value, ctx) => {
        try {
          return parse(value);
        } catch (error) {
          ctx.addIssue({ code: 'custom', message: (error as Error).message });
          return z.NEVER;
        }
      })
      .optional()
      .transform((value) => value ?? fallback),
  );
}

/** Where images are stored: the worker writes there; a producer checks each key fits it at enqueue. */
const storageUrlVar = z.preprocess(
  emptyAsUndefined,
  z
    .string()
    .regex(/^(file:|s3:\/\/)/, { error: 'must start with file: or s3://' })
    .default('file:./output'),
);

/**
 * Producers (and workers, whose schedule runner enqueues batches) read these too. STORAGE_URL
 * must match the workers': its folder or S3 prefix takes part of the room a key has.
 */
export const producerEnvSchema = baseEnvSchema.extend({ STORAGE_URL: storageUrlVar });

export const workerEnvSchema = baseEnvSchema.extend({
  DASHSCOPE_API_KEY: z.preprocess(emptyAsUndefined, z.string().min(8, { error: 'looks too short to be an API key' }).optional()),
  DASHSCOPE_REGION: z.preprocess(emptyAsUndefined, z.enum(REGIONS, { error: 'must be singapore or beijing' }).default('singapore')),
  DASHSCOPE_BASE_URL: urlVar(/^https?$/, 'must be an http(s) URL').superRefine((url, ctx) => {
    const problem = url === undefined ? undefined : insecureBaseUrlProblem(url);
    if (problem) ctx.addIssue({ code: 'custom', message: problem });
  }),
  ZIMAGE_ACCOUNTS: z.preprocess(emptyAsUndefined, z.string().optional()),
  STORAGE_URL: storageUrlVar,
  AWS_REGION: z.preprocess(emptyAsUndefined, z.string().optional()),
  AWS_ACCESS_KEY_ID: z.preprocess(emptyAsUndefined, z.string().optional()),
  AWS_SECRET_ACCESS_KEY: z.preprocess(emptyAsUndefined, z.string().optional()),
  AWS_ENDPOINT_URL_S3: urlVar(/^https?$/, 'must be an http(s) URL'),
  ZIMAGE_S3_FORCE_PATH_STYLE: boolVar(false),
  ZIMAGE_IMAGE_HOSTS: z.preprocess(
    emptyAsUndefined,
    z
      .string()
      .transform((v) => v.split(',').map((h) => h.trim().toLowerCase()).filter(Boolean))
      .pipe(
        z.array(z.string().regex(/^(\*\.)?[a-z0-9.-]+(:\d+)?$/, { error: 'each host must look like example.com, *.example.com or host:port' })),
      )
      .optional(),
  ),
  ZIMAGE_RPM: intVar(1, 100_000, 120),
  /** Jobs one worker process runs at once (most of the time is spent waiting on the upstream). */
  ZIMAGE_CONCURRENCY: intVar(1, 1000, 8),
  ZIMAGE_MAX_IMAGE_BYTES: intVar(1024, 200 * 1024 * 1024, 20 * 1024 * 1024),
  ZIMAGE_REQUEST_TIMEOUT_MS: intVar(1000, 600_000, 60_000),
  ZIMAGE_CONNECT_TIMEOUT_MS: intVar(100, 120_000, 10_000),
  /** Signs per-job webhooks: one or more `whsec_` secrets (several while rotating). */
  ZIMAGE_WEBHOOK_SECRET: parsedVar<Buffer[] | undefined>(parseWebhookSecrets, undefined),
  /** Registered endpoints (JSON; see webhooks/webhook-endpoints.ts), parsed with the raw env. */
  ZIMAGE_WEBHOOK_ENDPOINTS: z.preprocess(emptyAsUndefined, z.string().optional()),
  /** Budgets applied (created or replaced by id) when the worker starts: a JSON array (docs/spend-control.md). */
  ZIMAGE_BUDGETS: parsedVar<Budget[]>(parseBudgets, []),
  /** Fair share between tenants: producers hold new jobs in their tenants' lanes (docs/fair-share.md). Unset: left as the fleet has it. */
  ZIMAGE_FAIR_SHARE: z.preprocess(
    emptyAsUndefined,
    z
      .enum(['true', 'false', '1', '0', 'yes', 'no'], { error: 'must be true or false' })
      .transform((v) => v === 'true' || v === '1' || v === 'yes')
      .optional(),
  ),
  /** `tenant=weight` pairs applied when the worker starts (weights set through the API stay). */
  ZIMAGE_TENANT_WEIGHTS: parsedVar<TenantWeights>(tenantWeightsOrThrow, new Map()),
  ZIMAGE_WEBHOOK_RETRY_SCHEDULE: parsedVar(parseRetrySchedule, parseRetrySchedule(DEFAULT_RETRY_SCHEDULE)),
  ZIMAGE_WEBHOOK_TIMEOUT_MS: intVar(100, 60_000, 15_000),
  /** Deliveries one worker process makes at once. */
  ZIMAGE_WEBHOOK_CONCURRENCY: intVar(1, 1000, 20),
  /** Whether this worker process also delivers webhooks (fan-out + delivery queue). */
  ZIMAGE_WEBHOOK_DISPATCHER: boolVar(true),
  /** Unset: twice the request timeout plus 30 s, so a call in flight can finish (it may be billed). */
  ZIMAGE_SHUTDOWN_TIMEOUT_MS: z.preprocess(
    emptyAsUndefined,
    z
      .string()
      .regex(/^\d+$/, { error: 'must be a whole number of milliseconds' })
      .transform(Number)
      .pipe(z.number().max(3_600_000, { error: 'must be at most 3600000' }))
      .optional(),
  ),
});

/** The variables that open the object store: STORAGE_URL and the AWS_* ones. */
const storageVars = workerEnvSchema.pick({
  STORAGE_URL: true,
  AWS_REGION: true,
  AWS_ACCESS_KEY_ID: true,
  AWS_SECRET_ACCESS_KEY: true,
  AWS_ENDPOINT_URL_S3: true,
  ZIMAGE_S3_FORCE_PATH_STYLE: true,
}).shape;

/** Commands that read images back from storage (`zimage results --download`): the producer's and the storage variables. */
export const storageReaderEnvSchema = producerEnvSchema.extend(storageVars);

/** `zimage api`: the producer's variables, storage (readiness, gallery images) and the API's own. */
export const apiEnvSchema = producerEnvSchema.extend({
  ...storageVars,
  PORT: intVar(0, 65535, 8080),
  /** Interface to listen on. */
  ZIMAGE_API_HOST: z.preprocess(emptyAsUndefined, z.string().default('0.0.0.0')),
  /** Bearer tokens (comma-separated), each at least 16 characters. */
  ZIMAGE_API_TOKENS: z.preprocess(
    emptyAsUndefined,
    z
      .string({ error: 'is required: comma-separated bearer tokens (at least 16 characters each)' })
      .transform((v) => v.split(',').map((t) => t.trim()).filter(Boolean))
      .pipe(z.array(z.string().min(16, { error: 'each token must be at least 16 characters' })).min(1, { error: 'must list at least one token' })),
  ),
  /** `tenant=token` pairs: a token that enqueues and reads for that tenant only (docs/fair-share.md). */
  ZIMAGE_API_TENANT_TOKENS: parsedVar<Map<string, string>>(parseTenantTokens, new Map()),
  /** A bearer token that may read /metrics only (a scraper need not hold an API token). */
  ZIMAGE_METRICS_TOKEN: z.preprocess(emptyAsUndefined, z.string().min(16, { error: 'must be at least 16 characters' }).optional()),
  /** /metrics without any token (it shows spend, account ids and queue sizes): only on a private network. */
  ZIMAGE_METRICS_PUBLIC: boolVar(false),
  /** Largest request body (batches); job requests are capped at 64 KiB. */
  ZIMAGE_API_MAX_BODY_BYTES: intVar(1024, 1024 * 1024 * 1024, 64 * 1024 * 1024),
});

export type ApiEnv = z.output<typeof apiEnvSchema>;
export type BaseEnv = z.output<typeof baseEnvSchema>;
export type ProducerEnv = z.output<typeof producerEnvSchema>;
export type WorkerEnv = z.output<typeof workerEnvSchema>;

/**
 * Parses `env` with `schema`. Throws one CONFIG_INVALID error that lists every problem, each
 * naming its variable, and never quotes the value of a secret.
 */
export function loadConfig<T extends z.ZodType>(
  schema: T,
  env: Readonly<Record<string, string | undefined>>,
  /** Further rules over the raw environment, reported together with the schema's problems. */
  extraChecks?: (env: Readonly<Record<string, string | undefined>>) => { variable: string; message: string }[],
): z.output<T> {
  const parsed = schema.safeParse(env);
  const extra = [...clusterPrefixProblems(env), ...(extraChecks?.(env) ?? [])];
  if (parsed.success && extra.length === 0) return parsed.data;
  const issues = [
    ...(parsed.success ? [] : parsed.error.issues.map((issue) => ({ variable: String(issue.path[0] ?? '(environment)'), message: issue.message }))),
    ...extra,
  ];
  const problems = issues.map(({ variable, message }) => {
    const raw = env[variable];
    const shown = raw === undefined || SECRET_VARIABLES.has(variable) ? '' : ` (got "${maskUserinfo(raw).slice(0, 80)}")`;
    return `${variable}: ${message}${shown}`;
  });
  throw new AppError('CONFIG_INVALID', `Invalid configuration:\n  - ${problems.join('\n  - ')}`, {
    details: { variables: issues.map((i) => i.variable) },
  });
}

/** On a Redis Cluster every key of a deployment must share a slot: the prefix needs a hash tag. */
function clusterPrefixProblems(env: Readonly<Record<string, string | undefined>>): { variable: string; message: string }[] {
  if (!/^rediss?\+cluster:/i.test(env['REDIS_URL']?.trim() ?? '')) return [];
  const prefix = env['ZIMAGE_PREFIX']?.trim() || DEFAULT_PREFIX;
  return /^\{[^{}]+\}/.test(prefix) ? [] : [{ variable: 'ZIMAGE_PREFIX', message: 'must start with a hash tag such as {zimage} on a Redis Cluster (every key of a deployment in one slot)' }];
}

/** `redis://user:secret@host` → `redis://user:***@host`: a URL's password is a secret too. */
function maskUserinfo(value: string): string {
  return value.replace(/^([a-z][a-z0-9+.-]*:\/\/[^/@:]*):[^/@]*@/i, '$1:***@');
}

/** The worker needs an account: DASHSCOPE_API_KEY, or ZIMAGE_ACCOUNTS. */
export function requireAccount(env: Readonly<Record<string, string | undefined>>): { variable: string; message: string }[] {
  return env['DASHSCOPE_API_KEY']?.trim() || env['ZIMAGE_ACCOUNTS']?.trim()
    ? []
    : [{ variable: 'DASHSCOPE_API_KEY', message: 'is required (or ZIMAGE_ACCOUNTS for several accounts)' }];
}

/** The base URL to call: DASHSCOPE_BASE_URL when set, else the region's. No trailing slash. */
export function dashscopeBaseUrl(env: Pick<WorkerEnv, 'DASHSCOPE_BASE_URL' | 'DASHSCOPE_REGION'>): string {
  return (env.DASHSCOPE_BASE_URL ?? REGION_BASE_URLS[env.DASHSCOPE_REGION]).replace(/\/+$/, '');
}
