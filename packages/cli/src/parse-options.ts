/** Small converters for command-line options: strict, and naming the option on error. */
import { AppError, EVENT_TYPES, type EventType } from '@zimage/shared';

export function parseMetadataPairs(pairs: readonly string[]): Record<string, string> {
  const metadata: Record<string, string> = {};
  for (const pair of pairs) {
    const at = pair.indexOf('=');
    if (at <= 0) throw new AppError('REQUEST_INVALID', `--metadata must look like key=value (got "${pair}")`);
    metadata[pair.slice(0, at)] = pair.slice(at + 1);
  }
  return metadata;
}

export function parseInteger(option: string, text: string | undefined): number | undefined {
  if (text === undefined) return undefined;
  if (!/^-?\d+$/.test(text.trim())) throw new AppError('REQUEST_INVALID', `${option} must be a whole number (got "${text}")`);
  return Number(text);
}

export function collect(value: string, previous: string[]): string[] {
  return [...previous, value];
}

/** "job.succeeded,batch.completed" → the event types, each checked. */
export function parseEventTypes(text: string): EventType[] {
  const types = text.split(',').map((t) => t.trim()).filter(Boolean);
  const unknown = types.filter((t) => !(EVENT_TYPES as readonly string[]).includes(t));
  if (types.length === 0 || unknown.length > 0) {
    throw new AppError('REQUEST_INVALID', `--webhook-events must list event types among ${EVENT_TYPES.join(', ')} (got "${text}")`);
  }
  return types as EventType[];
}

/** An ISO 8601 time option (`--created-after`), or undefined when not given. */
export function parseTime(option: string, text: string | undefined): Date | undefined {
  if (text === undefined) return undefined;
  const time = new Date(text);
  if (!/^\d{4}-\d{2}-\d{2}T/.test(text) || Number.isNaN(time.getTime())) throw new AppError('USAGE_INVALID', `${option}: must be an ISO 8601 time such as 2026-12-01T08:00:00Z (got "${text}")`);
  return time;
}

/** `--batch`, `--pipeline` or `--tenant` (exactly one): what a bulk command works on, and how to name it. */
export function bulkScope(command: string, flags: { batch?: string | undefined; pipeline?: string | undefined; tenant?: string | undefined }): {
  scope: { batchId?: string; pipeline?: string; tenant?: string };
  label: string;
  json: Record<string, string>;
} {
  const given = (['batch', 'pipeline', 'tenant'] as const).filter((name) => flags[name] !== undefined);
  if (given.length !== 1) throw new AppError('USAGE_INVALID', `${command}: give exactly one of --batch, --pipeline, --tenant`);
  const name = given[0] as 'batch' | 'pipeline' | 'tenant';
  const value = flags[name] as string;
  const field = name === 'batch' ? 'batchId' : name;
  return { scope: { [field]: value }, label: `${name} ${value}`, json: { [field]: value } };
}
