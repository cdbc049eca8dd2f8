/** What `GET /v1/jobs/:id` answers: the job as a client sees it (no internals, no checkpoint). */
import { urlHost } from '@zimage/shared';
import type { JobView } from '@zimage/producer';
import type { ApiJob } from './api-schemas.js';

export function jobResponse(view: JobView): ApiJob {
  const p = view.payload;
  const [code, ...rest] = (view.failedReason ?? '').split(': ');
  return {
    id: view.jobId,
    state: view.state,
    attempts: view.attempts,
    request: {
      prompt: p.prompt,
      size: `${p.width}*${p.height}`,
      seed: p.seed,
      promptExtend: p.promptExtend,
      key: p.key,
      metadata: p.metadata,
      deadline: p.deadline === undefined ? undefined : new Date(p.deadline).toISOString(),
      batchId: p.batchId,
      cache: p.cache ? { namespace: p.cache.namespace, ttlSeconds: Math.round(p.cache.ttlMs / 1000), ...(p.cache.refresh ? { refresh: true } : {}) } : undefined,
      webhook: p.webhook ? { host: ('url' in p.webhook ? urlHost(p.webhook.url) : p.webhook.host) ?? '', events: p.webhook.events } : undefined,
    },
    result: view.result,
    error: view.failedReason ? { code: code !== undefined && /^[A-Z][A-Z0-9_]+$/.test(code) ? code : 'INTERNAL', message: rest.join(': ') || view.failedReason } : undefined,
    timings: { createdAt: view.createdAt, finishedAt: view.finishedAt },
  };
}

