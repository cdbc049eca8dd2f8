/**
 * The batch review page, `GET /batches/:id/gallery`: server-rendered HTML, one card per job with
 * its image (served through the API from storage, so a private bucket works), prompt, metadata and
 * status; failed items show their error; the budgets its jobs spend against, with their usage.
 * While the batch runs the page refreshes itself.
 * Browsers authenticate with HTTP Basic (the token as password), see create-api.ts.
 */
import { AppError, BATCH_ID_PATTERN, batchJobsKey, pipelineOfBatch, type Storage } from '@zimage/shared';
import type { FastifyInstance } from 'fastify';
import type { Redis } from 'ioredis';
import type { BudgetView, JobView, Producer } from '@zimage/producer';
import { batchResponse } from './routes-batches.js';

const PAGE_SIZE = 200;
const REFRESH_SECONDS = 3;

export function galleryRoutes(app: FastifyInstance, producer: Producer, redis: Redis, storage: Storage, prefix: string): void {
  app.get<{ Params: { id: string }; Querystring: { page?: string } }>('/batches/:id/gallery', async (request, reply) => {
    const batchId = request.params.id;
    const status = BATCH_ID_PATTERN.test(batchId) ? await producer.getBatch(batchId) : null;
    if (!status) throw new AppError('JOB_NOT_FOUND', `no batch ${batchId}`);
    const page = Math.max(1, Math.min(10_000, Number.parseInt(request.query.page ?? '1', 10) || 1));
    const ids = (await redis.smembers(batchJobsKey(prefix, batchId))).sort();
    const views = (await Promise.all(ids.slice((page - 1) * PAGE_SIZE, page * PAGE_SIZE).map((id) => producer.getJob(id)))).filter((v): v is JobView => v !== null);
    views.sort((a, b) => (a.payload.line ?? 0) - (b.payload.line ?? 0));
    const summary = batchResponse(status, Date.now());
    // The budgets its jobs spend against: the batch's, its pipeline's, its tenants', and the accounts'.
    const tenants = new Set([status.tenant, ...views.map((v) => v.payload.tenant)].filter((t): t is string => t !== undefined));
    const pipeline = pipelineOfBatch(batchId);
    const budgets = (await producer.listBudgets()).filter(
      (b) => b.scope === 'account' || (b.scope === 'batch' && b.subject === batchId) || (b.scope === 'pipeline' && b.subject === pipeline) || (b.scope === 'tenant' && tenants.has(b.subject)),
    );
    return reply.type('text/html; charset=utf-8').header('cache-control', 'no-store').send(renderGallery(summary, views, page, Math.ceil(ids.length / PAGE_SIZE), budgets));
  });

  app.get<{ Params: { id: string; jobId: string } }>('/batches/:id/images/:jobId', async (request, reply) => {
    const { id, jobId } = request.params;
    // Only images of this batch's jobs: the URL cannot be turned into a read of any object.
    if (!BATCH_ID_PATTERN.test(id) || !(await redis.sismember(batchJobsKey(prefix, id), jobId))) throw new AppError('JOB_NOT_FOUND', `no job ${jobId} in batch ${id}`);
    const view = await producer.getJob(jobId);
    if (!view?.result) throw new AppError('JOB_NOT_FOUND', `job ${jobId} has no image`);
    const bytes = await storage.read(view.result.key);
    if (!bytes) throw new AppError('JOB_NOT_FOUND', `the image of job ${jobId} is no longer in storage`);
    return reply.type('image/png').header('cache-control', 'private, max-age=3600').send(Buffer.from(bytes));
  });
}

type BatchSummary = ReturnType<typeof batchResponse>;

export function renderGallery(batch: BatchSummary, jobs: readonly JobView[], page: number, pages: number, budgets: readonly BudgetView[] = []): string {
  const running = batch.state !== 'completed';
  const cards = jobs.map((job) => card(batch.batchId, job)).join('\n');
  const c = batch.counts;
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
${running ? `<meta http-equiv="refresh" content="${REFRESH_SECONDS}">` : ''}
<title>Batch ${esc(batch.batchId)} · zimage</title>
<style>
  body { font: 14px/1.4 system-ui, sans-serif; margin: 24px; color: #1d1d1f; background: #fafafa; }
  header { margin-bottom: 16px; }
  h1 { font-size: 20px; margin: 0 0 4px; }
  .stats span { margin-right: 14px; }
  .grid { display: grid; grid-template-columns: repeat(auto-fill, minmax(220px, 1fr)); gap: 14px; }
  .card { background: #fff; border: 1px solid #ddd; border-radius: 8px; overflow: hidden; }
  .card.failed, .card.cancelled, .card.expired { border-color: #e0a0a0; }
  .thumb { width: 100%; height: auto; max-height: 320px; object-fit: contain; display: block; background: #eee; }
  .placeholder { width: 100%; aspect-ratio: 1; display: flex; align-items: center; justify-content: center; background: #f0f0f0; color: #777; }
  .body { padding: 8px 10px; }
  .state { font-weight: 600; text-transform: uppercase; font-size: 11px; letter-spacing: .04em; }
  .state.succeeded { color: #1a7f37; } .state.failed, .state.cancelled, .state.expired { color: #b42318; }
  .prompt { margin: 4px 0; word-break: break-word; }
  .meta { color: #555; font-size: 12px; word-break: break-word; }
  .error { color: #b42318; font-size: 12px; word-break: break-word; }
  .budgets { margin: 6px 0; padding-left: 18px; color: #555; } .budgets .exhausted { color: #b42318; }
</style>
</head>
<body>
<header>
  <nav><a href="/batches">All batches</a></nav>
  <h1>Batch ${esc(batch.batchId)}</h1>
  <div class="stats" data-state="${esc(batch.state)}">
    <span>${esc(batch.state)}</span>
    <span>${batch.total} jobs</span>
    <span class="ok">${c.succeeded} succeeded</span>
    <span>${c.failed} failed</span>
    <span>${c.expired} expired</span>
    <span>${c.cancelled} cancelled</span>
    <span>${c.pending} pending</span>
    <span>${Math.round(batch.progress * 100)}%</span>
    <span>${batch.imagesPerMinute} images/min</span>
    <span>~$${batch.estimatedCostUsd.toFixed(3)}</span>
  </div>
  ${budgets.length > 0 ? budgetLine(budgets) : ''}
  ${pages > 1 ? `<nav>page ${page} of ${pages}${page > 1 ? ` · <a href="?page=${page - 1}">previous</a>` : ''}${page < pages ? ` · <a href="?page=${page + 1}">next</a>` : ''}</nav>` : ''}
</header>
<main class="grid">
${cards}
</main>
</body>
</html>`;
}

/** The budgets covering the batch, one line each: spend against the limit, and what is parked. */
function budgetLine(budgets: readonly BudgetView[]): string {
  const items = budgets.map((b) => {
    const u = b.usage;
    const exhausted = b.kind === 'hard' && u.remainingUsd <= 0;
    return `<li data-budget="${esc(b.id)}" class="${exhausted ? 'exhausted' : ''}">${esc(b.id)} (${esc(b.scope)} ${esc(b.subject)}, ${esc(b.kind)}${b.period === 'none' ? '' : `, ${esc(u.periodKey)}`}): $${u.spentUsd.toFixed(3)} spent${u.maybeBilledUsd > 0 ? ` + $${u.maybeBilledUsd.toFixed(3)} maybe billed` : ''} of $${b.limitUsd.toFixed(2)}${b.parkedJobs > 0 ? ` · ${b.parkedJobs} jobs parked` : ''}${exhausted ? ' · exhausted' : ''}</li>`;
  });
  return `<ul class="budgets">${items.join('')}</ul>`;
}

function card(batchId: string, job: JobView): string {
  const state = job.state === 'completed' ? 'succeeded' : job.state;
  const src = `/batches/${encodeURIComponent(batchId)}/images/${encodeURIComponent(job.jobId)}`;
  // At the image's own aspect ratio (width and height reserve its box before it loads); a click
  // opens the full image.
  const image = job.result
    ? `<a class="full" href="${src}" target="_blank" rel="noopener"><img class="thumb" loading="lazy" width="${job.result.width}" height="${job.result.height}" style="aspect-ratio: ${job.result.width} / ${job.result.height}" alt="${esc(job.payload.prompt.slice(0, 120))}" src="${src}"></a>`
    : `<div class="placeholder">${esc(state)}</div>`;
  const metadata = Object.entries(job.payload.metadata)
    .map(([k, v]) => `${esc(k)}: ${esc(v)}`)
    .join(' · ');
  const error = job.failedReason ? `<div class="error">${esc(job.failedReason.slice(0, 300))}</div>` : '';
  return `<article class="card ${esc(state)}" data-job="${esc(job.jobId)}" data-state="${esc(state)}">
  ${image}
  <div class="body">
    <div class="state ${esc(state)}">${esc(state)}</div>
    <div class="prompt">${esc(job.payload.prompt)}</div>
    ${metadata ? `<div class="meta">${metadata}</div>` : ''}
    ${job.result ? `<div class="meta">${esc(job.result.key)} · ${job.result.width}×${job.result.height}</div>` : ''}
    ${error}
  </div>
</article>`;
}

/** HTML-escapes text (prompts and metadata are user input). */
export function esc(text: string): string {
  return text.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}
