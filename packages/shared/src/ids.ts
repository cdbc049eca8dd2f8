/**
 * The ids people choose: names (tenants, budgets, pipelines, cache namespaces) and batch ids. One
 * rule each, used by every boundary (HTTP, CLI, config, the library).
 *
 * A batch id is a name, or `{tenant}.{name}`: a tenant's API token names its batches under its
 * tenant (names cannot hold a `.`, so the two parts are never ambiguous), so one tenant can never
 * take, or learn of, a batch id another tenant uses, nor a plain one the operator uses. Ids
 * `{tenant}.…` are that tenant's to choose; an operator's token is not stopped from using them.
 */
import { z } from 'zod';

export const NAME_PATTERN = /^[A-Za-z0-9_-]{1,64}$/;
export const NAME_RULE = 'must match [A-Za-z0-9_-]{1,64}';
export const nameSchema = z.string({ error: 'must be a string' }).regex(NAME_PATTERN, { error: NAME_RULE });

export const BATCH_ID_PATTERN = /^(?:[A-Za-z0-9_-]{1,64}\.)?[A-Za-z0-9_-]{1,64}$/;
export const BATCH_ID_RULE = "must match [A-Za-z0-9_-]{1,64}, or {tenant}.{name} for a tenant's batch";
export const batchIdSchema = z.string({ error: 'must be a string' }).regex(BATCH_ID_PATTERN, { error: BATCH_ID_RULE });

/** The tenant part of a batch id (`acme` of `acme.catalogue-1`), if it has one. */
export function batchIdTenant(batchId: string): string | undefined {
  const dot = batchId.indexOf('.');
  return dot === -1 ? undefined : batchId.slice(0, dot);
}
