/**
 * Turns a job request into what is stored in BullMQ: validated, normalised, key resolved.
 * Pure (no I/O), so every rule is unit-tested without Redis.
 */
import { hash, randomUUID } from 'node:crypto';
import {
  assertKeyFitsStorage,
  assertSafeObjectKey,
  DEFAULT_CACHE_NAMESPACE,
  DEFAULT_CACHE_TTL_MS,
  DEFAULT_SIZE,
  parseDuration,
  isAppError,
  jobRequestSchema,
  MAX_PRIORITY,
  recommendedSize,
  renderKeyTemplate,
  templateFields,
  toFieldIssues,
  webhookRefOf,
  type FieldIssue,
  type JobPayload,
  type JobRequest,
  type StorageKeyLimits,
  type WebhookSpec,
} from '@zimage/shared';

export interface PrepareContext {
  now: number;
  /** Batch the job belongs to (overrides the request's batchId). */
  batchId?: string | undefined;
  /** 1-based line of the batch file. */
  line?: number | undefined;
  /** The row's identifying value, for the results manifest. */
  rowKey?: string | undefined;
  /** Extra values for key placeholders (a CSV row's columns), besides the metadata. */
  templateValues?: Readonly<Record<string, string | undefined>>;
  /**
   * What the configured store leaves for a key after its folder or S3 prefix. Without it only the
   * rules every store shares are checked, and a key too long for this one fails after it was paid for.
   */
  keyLimits?: StorageKeyLimits | undefined;
  /**
   * The tenant of the API token that sent it (a tenant's token): the job is that tenant's — a
   * request naming another is refused — and what it writes and reuses is the tenant's own: its
   * key goes under `tenants/{tenant}/`, its render cache namespace and its idempotency key are
   * the tenant's, so one tenant can neither overwrite nor reach another's objects or jobs.
   */
  boundTenant?: string | undefined;
}

export interface PreparedJob {
  jobId: string;
  payload: JobPayload;
  /** BullMQ priority: 1 is served first. */
  bullPriority: number;
  idempotent: boolean;
  /** The job's own webhook with its URL: the producer stores it (the payload holds a reference). */
  webhook?: WebhookSpec;
}

export type PrepareOutcome = { ok: true; job: PreparedJob } | { ok: false; issues: FieldIssue[] };

export const DEFAULT_KEY_TEMPLATE = 'images/{id}.png';
export const DEFAULT_BATCH_KEY_TEMPLATE = '{batchId}/{id}.png';

export function prepareJob(input: unknown, context: PrepareContext): PrepareOutcome {
  const parsed = jobRequestSchema.safeParse(input);
  if (!parsed.success) return { ok: false, issues: toFieldIssues(parsed.error, input) };
  const issues: FieldIssue[] = [];
  const bound = context.boundTenant;
  if (bound !== undefined && parsed.data.tenant !== undefined && parsed.data.tenant !== bound) issues.push(foreignTenant(bound));
  const request: JobRequest = bound === undefined ? parsed.data : { ...parsed.data, tenant: bound, ...(parsed.data.cacheNamespace === undefined ? {} : { cacheNamespace: tenantCacheNamespace(bound, parsed.data.cacheNamespace) }) };

  if (request.deadline !== undefined && Date.parse(request.deadline) <= context.now) {
    issues.push({ field: 'deadline', message: `is in the past (${request.deadline})` });
  }
  const batchId = context.batchId ?? request.batchId;
  const jobId = request.idempotencyKey ? idempotentJobId(request.idempotencyKey, bound) : randomJobId();
  const size = request.size ?? (request.aspect ? recommendedSize(request.aspect, request.tier) : DEFAULT_SIZE);

  const template = `${bound === undefined ? '' : `tenants/${bound}/`}${request.key ?? (batchId ? DEFAULT_BATCH_KEY_TEMPLATE : DEFAULT_KEY_TEMPLATE)}`;
  const rendered = renderKeyTemplate(template, keyTemplateValues(template, context.templateValues, request.metadata, jobId, batchId, utcDate(context.now)));
  let key = '';
  if (typeof rendered !== 'string') {
    issues.push({ field: 'key', message: rendered.error });
  } else {
    try {
      key = assertSafeObjectKey(rendered);
      if (context.keyLimits) assertKeyFitsStorage(key, context.keyLimits);
    } catch (error) {
      issues.push({ field: 'key', message: isAppError(error) ? error.message : String(error) });
    }
  }
  if (issues.length > 0) return { ok: false, issues };

  const normalised = {
    prompt: request.prompt,
    width: size.width,
    height: size.height,
    seed: request.seed,
    promptExtend: request.promptExtend,
    // The key template, not the rendered key: an idempotent repeat renders a different `{date}`.
    key: request.key,
    metadata: request.metadata,
    webhook: request.webhook,
    deadline: request.deadline,
    batchId,
    tenant: request.tenant,
    cache: request.cache ? [request.cacheNamespace, request.cacheTtl, request.cacheRefresh] : undefined,
  };
  // Built field by field rather than filtered afterwards: fields not given are left out (the
  // worker's schema has them optional), in the order the payload has always had.
  const payload = { v: 1, prompt: request.prompt, width: size.width, height: size.height } as JobPayload;
  if (request.seed !== undefined) payload.seed = request.seed;
  payload.promptExtend = request.promptExtend;
  payload.key = key;
  payload.metadata = request.metadata;
  if (request.webhook !== undefined) payload.webhook = webhookRefOf(request.webhook);
  if (request.deadline !== undefined) payload.deadline = Date.parse(request.deadline);
  if (batchId !== undefined) payload.batchId = batchId;
  if (request.tenant !== undefined) payload.tenant = request.tenant;
  if (context.line !== undefined) payload.line = context.line;
  if (context.rowKey !== undefined) payload.rowKey = context.rowKey;
  if (request.cache) {
    payload.cache = { namespace: request.cacheNamespace ?? (bound === undefined ? DEFAULT_CACHE_NAMESPACE : tenantCacheNamespace(bound, DEFAULT_CACHE_NAMESPACE)), ttlMs: parseDuration(request.cacheTtl ?? '') ?? DEFAULT_CACHE_TTL_MS };
    if (request.cacheRefresh) payload.cache.refresh = true;
  }
  payload.requestHash = sha256(stableStringify(normalised));
  payload.createdAt = context.now;
  return {
    ok: true,
    job: { jobId, payload, bullPriority: MAX_PRIORITY + 1 - request.priority, idempotent: !!request.idempotencyKey, ...(request.webhook ? { webhook: request.webhook } : {}) },
  };
}

export function newBatchId(): string {
  return `b_${randomUUID().replaceAll('-', '').slice(0, 20)}`;
}

/**
 * Finds rows of one batch that would collide: two rows writing the same object key (two paid
 * images, one overwriting the other) or sharing an idempotency key (BullMQ would silently keep
 * one, and the batch would wait forever for the other).
 */
export class DuplicateFinder {
  readonly #keys = new Map<string, number>();
  readonly #jobIds = new Map<string, number>();

  check(job: PreparedJob, line: number): FieldIssue[] {
    if (job.idempotent) {
      const idLine = this.#jobIds.get(job.jobId);
      // The same idempotency key means the same job (and so the same key): one issue says it.
      if (idLine !== undefined) return [{ field: 'idempotencyKey', message: `is also the idempotency key of item ${idLine}` }];
      this.#jobIds.set(job.jobId, line);
    }
    const keyLine = this.#keys.get(job.payload.key);
    if (keyLine !== undefined) return [{ field: 'key', message: `"${job.payload.key}" is also the key of item ${keyLine}` }];
    this.#keys.set(job.payload.key, line);
    return [];
  }
}

/**
 * A tenant's token's idempotency keys are its own: two tenants using the same key get two jobs,
 * so one cannot reach (or learn of) the other's by guessing its key.
 */
export function idempotentJobId(idempotencyKey: string, tenant?: string): string {
  return `idem-${sha256(tenant === undefined ? idempotencyKey : `${tenant}\n${idempotencyKey}`).slice(0, 32)}`;
}

/** A request naming another tenant than the API token's. */
export function foreignTenant(tenant: string): FieldIssue {
  return { field: 'tenant', message: `must be ${tenant} (the API token's tenant) or left out` };
}

/** A bound tenant's render cache namespace: `:` cannot occur in a namespace a request names. */
function tenantCacheNamespace(tenant: string, namespace: string): string {
  return `tenant:${tenant}:${namespace}`;
}

function randomJobId(): string {
  return randomUUID();
}

function sha256(text: string): string {
  return hash('sha256', text, 'hex');
}

/** JSON with sorted keys, so equal requests hash equally whatever their key order. */
export function stableStringify(value: unknown): string {
  if (!value || typeof value !== 'object') return JSON.stringify(value);
  if (Array.isArray(value)) {
    let text = '[';
    for (let i = 0; i < value.length; i++) text += `${i > 0 ? ',' : ''}${stableStringify(value[i]) ?? ''}`;
    return `${text}]`;
  }
  const record = value as Record<string, unknown>;
  // Default sort order is by UTF-16 code units, as `<` compares strings.
  const keys = Object.keys(record).sort();
  let text = '{';
  for (const key of keys) {
    const item = record[key];
    if (item === undefined) continue;
    text += `${text.length > 1 ? ',' : ''}${JSON.stringify(key)}:${stableStringify(item)}`;
  }
  return `${text}}`;
}

const placeholders = new Map<string, readonly string[]>();

/**
 * The values a key template can use, as `{ ...templateValues, ...metadata, id, batchId, date }`
 * would give them, but only for the placeholders the template names: a batch's template names
 * one or two of a row's columns, and copying all of them for every row was wasted work.
 */
function keyTemplateValues(
  template: string,
  templateValues: Readonly<Record<string, string | undefined>> | undefined,
  metadata: Readonly<Record<string, string>>,
  id: string,
  batchId: string | undefined,
  date: string,
): Record<string, string | undefined> {
  let names = placeholders.get(template);
  if (!names) {
    // A request's own key template (the API's) can be anything: keep the cache bounded.
    if (placeholders.size >= 1000) placeholders.clear();
    names = templateFields(template);
    placeholders.set(template, names);
  }
  const values: Record<string, string | undefined> = {};
  for (const name of names) {
    let value: string | undefined;
    if (name === 'id') value = id;
    else if (name === 'batchId') value = batchId;
    else if (name === 'date') value = date;
    else if (Object.hasOwn(metadata, name)) value = metadata[name];
    else if (templateValues && Object.hasOwn(templateValues, name)) value = templateValues[name];
    else continue; // as with the spread, a name that is nowhere is left unset
    // Assigning `__proto__` would set the prototype; spread makes it an own value.
    if (name === '__proto__') Object.defineProperty(values, name, { value, enumerable: true, writable: true, configurable: true });
    else values[name] = value;
  }
  return values;
}

let today = { now: Number.NaN, date: '' };

/** `{date}`: every row of a batch shares one `now`, so the date is formatted once. */
function utcDate(now: number): string {
  if (now !== today.now) today = { now, date: new Date(now).toISOString().slice(0, 10) };
  return today.date;
}
