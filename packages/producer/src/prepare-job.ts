/**
 * Turns a job request into what is stored in BullMQ: validated, normalised, key resolved.
 * Pure (no I/O), so every rule is unit-tested without Redis.
 */
import { createHash, randomUUID } from 'node:crypto';
import {
  assertKeyFitsStorage,
  assertSafeObjectKey,
  DEFAULT_SIZE,
  isAppError,
  jobRequestSchema,
  MAX_PRIORITY,
  recommendedSize,
  renderKeyTemplate,
  toFieldIssues,
  type FieldIssue,
  type JobPayload,
  type JobRequest,
  type StorageKeyLimits,
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
}

export interface PreparedJob {
  jobId: string;
  payload: JobPayload;
  /** BullMQ priority: 1 is served first. */
  bullPriority: number;
  idempotent: boolean;
}

export type PrepareOutcome = { ok: true; job: PreparedJob } | { ok: false; issues: FieldIssue[] };

export const DEFAULT_KEY_TEMPLATE = 'images/{id}.png';
export const DEFAULT_BATCH_KEY_TEMPLATE = '{batchId}/{id}.png';

export function prepareJob(input: unknown, context: PrepareContext): PrepareOutcome {
  const parsed = jobRequestSchema.safeParse(input);
  if (!parsed.success) return { ok: false, issues: toFieldIssues(parsed.error, input) };
  const request: JobRequest = parsed.data;
  const issues: FieldIssue[] = [];

  if (request.deadline !== undefined && Date.parse(request.deadline) <= context.now) {
    issues.push({ field: 'deadline', message: `is in the past (${request.deadline})` });
  }
  const batchId = context.batchId ?? request.batchId;
  const jobId = request.idempotencyKey ? idempotentJobId(request.idempotencyKey) : randomJobId();
  const size = request.size ?? (request.aspect ? recommendedSize(request.aspect, request.tier) : DEFAULT_SIZE);

  const template = request.key ?? (batchId ? DEFAULT_BATCH_KEY_TEMPLATE : DEFAULT_KEY_TEMPLATE);
  const rendered = renderKeyTemplate(template, {
    ...context.templateValues,
    ...request.metadata,
    id: jobId,
    batchId,
    date: new Date(context.now).toISOString().slice(0, 10),
  });
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
  };
  const payload: JobPayload = {
    v: 1,
    prompt: request.prompt,
    width: size.width,
    height: size.height,
    seed: request.seed,
    promptExtend: request.promptExtend,
    key,
    metadata: request.metadata,
    webhook: request.webhook,
    deadline: request.deadline === undefined ? undefined : Date.parse(request.deadline),
    batchId,
    line: context.line,
    rowKey: context.rowKey,
    requestHash: sha256(stableStringify(normalised)),
    createdAt: context.now,
  };
  return {
    ok: true,
    job: { jobId, payload: dropUndefined(payload), bullPriority: MAX_PRIORITY + 1 - request.priority, idempotent: !!request.idempotencyKey },
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

export function idempotentJobId(idempotencyKey: string): string {
  return `idem-${sha256(idempotencyKey).slice(0, 32)}`;
}

function randomJobId(): string {
  return randomUUID();
}

function sha256(text: string): string {
  return createHash('sha256').update(text).digest('hex');
}

/** JSON with sorted keys, so equal requests hash equally whatever their key order. */
export function stableStringify(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(stableStringify).join(',')}]`;
  if (value && typeof value === 'object') {
    const entries = Object.entries(value as Record<string, unknown>)
      .filter(([, v]) => v !== undefined)
      .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
    return `{${entries.map(([k, v]) => `${JSON.stringify(k)}:${stableStringify(v)}`).join(',')}}`;
  }
  return JSON.stringify(value);
}

function dropUndefined<T extends object>(value: T): T {
  return Object.fromEntries(Object.entries(value).filter(([, v]) => v !== undefined)) as T;
}
