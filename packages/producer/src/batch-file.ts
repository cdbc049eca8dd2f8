/**
 * Batch files (CSV or JSONL), streamed: rows are read one at a time, never all at once, so a
 * 100,000-row catalogue costs the same memory as a 10-row one.
 *
 * Each row becomes a job request: the prompt comes from `--prompt-template` filled from the row's
 * columns (or a `prompt` column); known columns (size, aspect, tier, seed, prompt_extend, priority,
 * deadline, idempotency_key, key, tenant, cache, cache_namespace, cache_ttl, cache_refresh) set those fields; every other column whose name is a valid
 * metadata key becomes metadata, and every column can be used in the key template.
 */
import { createReadStream } from 'node:fs';
import { createInterface } from 'node:readline';
import { parse } from 'csv-parse';
import { renderTemplate, type FieldIssue, type JobRequestInput } from '@zimage/shared';
import { METADATA_KEY_PATTERN } from '@zimage/shared';
import { unreadableBatchFileKind } from './batch-file-kind.js';
import { foreignTenant } from './prepare-job.js';

export type BatchFormat = 'csv' | 'jsonl';

export interface RowMapping {
  /** e.g. "Studio photo of {title} in {color}"; when absent the row's `prompt` is used. */
  promptTemplate?: string | undefined;
  /** e.g. "catalogue/{sku}.png"; a row's `key` column wins. */
  keyTemplate?: string | undefined;
  /**
   * Columns copied into the job's metadata (and so into events and object metadata).
   * @defaultValue every column whose name is a valid metadata key
   */
  metadataColumns?: readonly string[] | undefined;
  /** Column that identifies a row in the results manifest. @defaultValue the first column */
  rowKeyColumn?: string | undefined;
  /** Fields applied to every row unless the row sets them (size, promptExtend, priority, ...). */
  defaults?: Partial<JobRequestInput> | undefined;
  /** The only tenant rows may name (a tenant's API token): every row gets it; a row naming another is refused. */
  tenant?: string | undefined;
}

export interface BatchRow {
  /** 1-based line where the row starts. */
  line: number;
  /** Column values as strings (JSONL values that are not strings are kept as they are). */
  fields: Record<string, unknown>;
}

export type RowOutcome =
  | { ok: true; request: JobRequestInput; templateValues: Record<string, string>; rowKey: string | undefined }
  | { ok: false; issues: FieldIssue[] };

export function detectFormat(path: string): BatchFormat {
  return /\.(jsonl|ndjson)$/i.test(path) ? 'jsonl' : 'csv';
}

/**
 * A row that could not be read. `fatal` when the rest of the file cannot be read either (an
 * unclosed quote, a bad header): then even --skip-invalid must stop, or rows would be lost silently.
 */
export interface UnreadableRow {
  line: number;
  error: string;
  fatal?: boolean;
}

/** Streams the rows of a batch file. A row with the wrong number of fields, or invalid JSON, is an unreadable row. */
export async function* readBatchRows(path: string, format: BatchFormat = detectFormat(path)): AsyncGenerator<BatchRow | UnreadableRow> {
  const wrongKind = await unreadableBatchFileKind(path, format);
  if (wrongKind) {
    yield { line: 1, error: wrongKind, fatal: true };
    return;
  }
  if (format === 'jsonl') {
    const lines = createInterface({ input: createReadStream(path, 'utf8'), crlfDelay: Infinity });
    let line = 0;
    for await (let text of lines) {
      line += 1;
      if (line === 1 && text.startsWith('\uFEFF')) text = text.slice(1); // a UTF-8 byte order mark
      if (text.trim() === '') continue;
      let value: unknown;
      try {
        value = JSON.parse(text);
      } catch (error) {
        yield { line, error: `not valid JSON: ${(error as Error).message}` };
        continue;
      }
      if (!value || typeof value !== 'object' || Array.isArray(value)) {
        yield { line, error: 'each line must be a JSON object' };
        continue;
      }
      yield { line, fields: value as Record<string, unknown> };
    }
    return;
  }
  // Records as arrays (not `columns: true`) so a row with a wrong field count is reported and
  // reading goes on, instead of csv-parse stopping the whole file at it.
  const parser = createReadStream(path).pipe(parse({ bom: true, raw: true, skip_empty_lines: true, trim: true, relax_column_count: true }));
  let header: string[] | undefined;
  let cursor = 1;
  try {
    for await (const { record, raw } of parser as AsyncIterable<{ record: string[]; raw: string }>) {
      const { start, next } = locateRecord(raw, cursor);
      cursor = next;
      if (!header) {
        const duplicate = record.find((name, i) => record.indexOf(name) !== i);
        if (record.some((name) => name === '') || duplicate !== undefined) {
          yield { line: start, error: `CSV header: column names must be non-empty and unique${duplicate ? ` ("${duplicate}" twice)` : ''}`, fatal: true };
          return;
        }
        header = record;
        continue;
      }
      if (record.length !== header.length) {
        yield { line: start, error: `CSV: has ${record.length} fields; the header has ${header.length}` };
        continue;
      }
      const fields: Record<string, unknown> = {};
      for (let i = 0; i < header.length; i++) fields[header[i] as string] = record[i] ?? '';
      yield { line: start, fields };
    }
  } catch (error) {
    yield { line: cursor, error: `CSV: ${(error as Error).message}; the rest of the file cannot be read`, fatal: true };
  }
}

/**
 * Where a record starts, from its raw text: csv-parse's own line count skips blank lines and
 * counts a CRLF inside quotes twice, so lines are counted here (blank lines lead the raw text).
 * A line break is CRLF, LF or CR; the one that ends the record is not counted.
 */
export function locateRecord(raw: string, cursor: number): { start: number; next: number } {
  let i = 0;
  let start = cursor;
  for (;;) {
    const code = raw.charCodeAt(i);
    if (code === LF) i += 1;
    else if (code === CR) i += raw.charCodeAt(i + 1) === LF ? 2 : 1;
    else break;
    start += 1;
  }
  let end = raw.length;
  if (end > i && raw.charCodeAt(end - 1) === LF) end -= end - 1 > i && raw.charCodeAt(end - 2) === CR ? 2 : 1;
  else if (end > i && raw.charCodeAt(end - 1) === CR) end -= 1;
  let breaks = 0;
  for (let j = i; j < end; j++) {
    const code = raw.charCodeAt(j);
    if (code === LF) breaks += 1;
    else if (code === CR) {
      breaks += 1;
      if (raw.charCodeAt(j + 1) === LF) j += 1;
    }
  }
  return { start, next: start + breaks + 1 };
}

const LF = 10;
const CR = 13;

const KNOWN_COLUMNS: Record<string, keyof JobRequestInput> = {
  prompt: 'prompt',
  size: 'size',
  aspect: 'aspect',
  tier: 'tier',
  seed: 'seed',
  prompt_extend: 'promptExtend',
  promptextend: 'promptExtend',
  priority: 'priority',
  deadline: 'deadline',
  idempotency_key: 'idempotencyKey',
  idempotencykey: 'idempotencyKey',
  key: 'key',
  cache: 'cache',
  tenant: 'tenant',
  cache_namespace: 'cacheNamespace',
  cachenamespace: 'cacheNamespace',
  cache_ttl: 'cacheTtl',
  cachettl: 'cacheTtl',
  cache_refresh: 'cacheRefresh',
  cacherefresh: 'cacheRefresh',
};

interface ColumnRole {
  field: keyof JobRequestInput | undefined;
  /** Copied into metadata (when it is not a known field). */
  wanted: boolean;
}

// What each column name means, worked out once per name and metadataColumns list rather than
// for every row (a name's role depends on nothing else).
const DEFAULT_ROLES = new Map<string, ColumnRole>();
const ROLES_BY_COLUMN_LIST = new WeakMap<readonly string[], Map<string, ColumnRole>>();
const MAX_CACHED_COLUMNS = 10_000;

function columnRoles(metadataColumns: readonly string[] | undefined): Map<string, ColumnRole> {
  if (!metadataColumns) return DEFAULT_ROLES;
  let roles = ROLES_BY_COLUMN_LIST.get(metadataColumns);
  if (!roles) ROLES_BY_COLUMN_LIST.set(metadataColumns, (roles = new Map()));
  return roles;
}

/** Maps one row to a job request; string columns are converted with strict rules. */
export function rowToRequest(row: BatchRow, mapping: RowMapping): RowOutcome {
  const issues: FieldIssue[] = [];
  const request = copyOf(mapping.defaults);
  const metadata: Record<string, string> = {};
  const templateValues: Record<string, string> = {};

  const roles = columnRoles(mapping.metadataColumns);
  for (const column in row.fields) {
    if (!Object.hasOwn(row.fields, column)) continue;
    const raw = row.fields[column];
    let role = roles.get(column);
    if (!role) {
      if (roles.size >= MAX_CACHED_COLUMNS) roles.clear();
      role = {
        field: KNOWN_COLUMNS[column.toLowerCase()],
        wanted: mapping.metadataColumns ? mapping.metadataColumns.includes(column) : METADATA_KEY_PATTERN.test(column),
      };
      roles.set(column, role);
    }
    const field = role.field;
    if (typeof raw === 'string') templateValues[column] = raw;
    if (field) {
      if (raw === '' || raw === undefined || raw === null) continue;
      const converted = convert(field, raw);
      if (converted instanceof ConversionError) issues.push({ field: column, message: converted.message });
      else request[field] = converted;
      continue;
    }
    // JSON rows (JSONL, the API's JSON arrays) may carry a job's own webhook as an object.
    if (column === 'webhook' && raw && typeof raw === 'object' && !Array.isArray(raw)) {
      request['webhook'] = raw;
      continue;
    }
    if (column === 'metadata' && raw && typeof raw === 'object' && !Array.isArray(raw)) {
      for (const [k, v] of Object.entries(raw as Record<string, unknown>)) {
        metadata[k] = typeof v === 'string' ? v : JSON.stringify(v);
        if (typeof v === 'string') templateValues[k] ??= v;
      }
      continue;
    }
    if (role.wanted && raw !== '' && raw !== undefined && raw !== null) {
      metadata[column] = typeof raw === 'string' ? raw : JSON.stringify(raw);
    }
  }

  if (mapping.promptTemplate) {
    const prompt = renderTemplate(mapping.promptTemplate, templateValues);
    if (typeof prompt === 'string') request['prompt'] = prompt;
    else issues.push({ field: 'prompt', message: `--prompt-template: ${prompt.error}` });
  } else if (request['prompt'] === undefined) {
    issues.push({ field: 'prompt', message: 'is required: add a "prompt" column or pass --prompt-template' });
  }
  if (mapping.keyTemplate && request['key'] === undefined) request['key'] = mapping.keyTemplate;
  if (mapping.tenant !== undefined) {
    if (request['tenant'] !== undefined && request['tenant'] !== mapping.tenant) issues.push(foreignTenant(mapping.tenant));
    request['tenant'] = mapping.tenant;
  }
  if (firstKey(metadata) !== undefined) {
    const base = request['metadata'] as Record<string, string> | undefined;
    request['metadata'] = base === undefined ? metadata : { ...base, ...metadata };
  }

  if (issues.length > 0) return { ok: false, issues };
  const rowKeyColumn = mapping.rowKeyColumn ?? firstKey(row.fields);
  const rowKeyValue = rowKeyColumn === undefined ? undefined : row.fields[rowKeyColumn];
  const rowKey = typeof rowKeyValue === 'string' || typeof rowKeyValue === 'number' ? String(rowKeyValue).slice(0, 200) : undefined;
  return { ok: true, request: request as unknown as JobRequestInput, templateValues, rowKey };
}

/**
 * `{ ...value }`, for an object that gets more properties next: V8 turns a spread copy that is
 * then extended into a slow dictionary-mode object, and this one is made for every row.
 */
function copyOf(value: object | undefined): Record<string, unknown> {
  const copy: Record<string, unknown> = {};
  if (!value) return copy;
  for (const key of Object.keys(value)) {
    const item = (value as Record<string, unknown>)[key];
    // Assigning `__proto__` would set the prototype; spread makes it an own property.
    if (key === '__proto__') Object.defineProperty(copy, key, { value: item, enumerable: true, writable: true, configurable: true });
    else copy[key] = item;
  }
  return copy;
}

function firstKey(fields: Record<string, unknown>): string | undefined {
  for (const key in fields) if (Object.hasOwn(fields, key)) return key;
  return undefined;
}

function convert(field: keyof JobRequestInput, raw: unknown): unknown {
  if (typeof raw !== 'string') return raw;
  const text = raw.trim();
  switch (field) {
    case 'seed':
    case 'priority':
      return /^-?\d+$/.test(text) ? Number(text) : new ConversionError(`must be a whole number (got "${text}")`);
    case 'promptExtend':
    case 'cache':
    case 'cacheRefresh':
      if (/^(true|1|yes)$/i.test(text)) return true;
      if (/^(false|0|no)$/i.test(text)) return false;
      return new ConversionError(`must be true or false (got "${text}")`);
    default:
      return raw;
  }
}

class ConversionError {
  constructor(readonly message: string) {}
}
