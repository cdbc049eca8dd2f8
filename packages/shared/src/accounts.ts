/**
 * DashScope accounts the workers may use. Each account (an Alibaba Cloud account in one region)
 * gets its own fleet-wide pace: quotas are per account and model, shared by all its keys.
 *
 * One account: `DASHSCOPE_API_KEY` (+ `DASHSCOPE_REGION`, `DASHSCOPE_BASE_URL`, `ZIMAGE_RPM`), as
 * before. Several: `ZIMAGE_ACCOUNTS`, a JSON array; keys are best given by the name of the
 * variable that holds them, so the list itself can live in version control:
 *
 *   ZIMAGE_ACCOUNTS='[{"id":"sg","region":"singapore","apiKeyEnv":"DASHSCOPE_KEY_SG"},
 *                     {"id":"bj","region":"beijing","apiKeyEnv":"DASHSCOPE_KEY_BJ","rpm":120}]'
 */
import { z } from 'zod';
import { dashscopeBaseUrl, insecureBaseUrlProblem, REGION_BASE_URLS, type WorkerEnv } from './config.js';
import { AppError } from './errors.js';
import { REGIONS, type Region } from './job-result.js';

export interface AccountConfig {
  /** Stable name, used in Redis keys, logs and results; never the key. */
  id: string;
  region: Region;
  apiKey: string;
  baseUrl: string;
  /** The account's configured quota; the governor's starting estimate. */
  rpm: number;
}

const accountEntrySchema = z
  .strictObject({
    id: z.string().regex(/^[A-Za-z0-9_-]{1,32}$/, { error: 'id must match [A-Za-z0-9_-]{1,32}' }),
    region: z.enum(REGIONS, { error: 'region must be singapore or beijing' }),
    apiKeyEnv: z.string().regex(/^[A-Z_][A-Z0-9_]*$/, { error: 'apiKeyEnv must be an environment variable name' }).optional(),
    apiKey: z.string().min(8, { error: 'apiKey looks too short' }).optional(),
    baseUrl: z
      .url({ protocol: /^https?$/, error: 'baseUrl must be an http(s) URL' })
      .superRefine((url, ctx) => {
        const problem = insecureBaseUrlProblem(url);
        if (problem) ctx.addIssue({ code: 'custom', message: `baseUrl ${problem}` });
      })
      .optional(),
    rpm: z.number().int().min(1).max(100_000).optional(),
  })
  .refine((entry) => (entry.apiKey === undefined) !== (entry.apiKeyEnv === undefined), { error: 'give exactly one of apiKey and apiKeyEnv' });

export function resolveAccounts(env: WorkerEnv, rawEnv: Readonly<Record<string, string | undefined>>): AccountConfig[] {
  const listed = rawEnv['ZIMAGE_ACCOUNTS']?.trim();
  if (!listed) {
    if (!env.DASHSCOPE_API_KEY) {
      throw new AppError('CONFIG_INVALID', 'Invalid configuration:\n  - DASHSCOPE_API_KEY: is required (or ZIMAGE_ACCOUNTS for several accounts)');
    }
    return [{ id: env.DASHSCOPE_REGION, region: env.DASHSCOPE_REGION, apiKey: env.DASHSCOPE_API_KEY, baseUrl: dashscopeBaseUrl(env), rpm: env.ZIMAGE_RPM }];
  }
  let json: unknown;
  try {
    json = JSON.parse(listed);
  } catch {
    throw new AppError('CONFIG_INVALID', 'Invalid configuration:\n  - ZIMAGE_ACCOUNTS: must be a JSON array of accounts');
  }
  const parsed = z.array(accountEntrySchema).min(1, { error: 'must list at least one account' }).safeParse(json);
  if (!parsed.success) {
    const problems = parsed.error.issues.map((i) => `ZIMAGE_ACCOUNTS[${i.path.join('.')}]: ${i.message}`);
    throw new AppError('CONFIG_INVALID', `Invalid configuration:\n  - ${problems.join('\n  - ')}`);
  }
  const problems: string[] = [];
  const ids = new Set<string>();
  const accounts = parsed.data.map((entry, index) => {
    if (ids.has(entry.id)) problems.push(`ZIMAGE_ACCOUNTS[${index}].id: "${entry.id}" is listed twice`);
    ids.add(entry.id);
    const apiKey = entry.apiKey ?? rawEnv[entry.apiKeyEnv ?? '']?.trim();
    if (!apiKey) problems.push(`ZIMAGE_ACCOUNTS[${index}].apiKeyEnv: ${entry.apiKeyEnv} is not set`);
    return {
      id: entry.id,
      region: entry.region,
      apiKey: apiKey ?? '',
      baseUrl: (entry.baseUrl ?? REGION_BASE_URLS[entry.region]).replace(/\/+$/, ''),
      rpm: entry.rpm ?? env.ZIMAGE_RPM,
    };
  });
  if (problems.length > 0) throw new AppError('CONFIG_INVALID', `Invalid configuration:\n  - ${problems.join('\n  - ')}`);
  return accounts;
}
