/**
 * `GET /batches`: the operator's index of batches, newest first, each linking to its gallery;
 * filtered by state and paged like `GET /v1/batches` (the same query). Refreshes itself while any
 * listed batch runs. Browsers authenticate with HTTP Basic (the token as password).
 */
import type { Producer } from '@zimage/producer';
import type { FastifyInstance } from 'fastify';
import type { ApiBatch } from './api-schemas.js';
import { batchResponse, listBatchesQuery } from './routes-batches.js';
import { esc } from './routes-gallery.js';

const REFRESH_SECONDS = 5;

export function batchIndexRoutes(app: FastifyInstance, producer: Producer): void {
  app.get('/batches', async (request, reply) => {
    const options = listBatchesQuery(request.query);
    const page = await producer.listBatches(options);
    const now = Date.now();
    const batches = page.batches.map((status) => batchResponse(status, now));
    // The next page keeps every filter of this one.
    const { cursor: _cursor, ...filters } = (request.query ?? {}) as Record<string, string>;
    const next = page.nextCursor === null ? undefined : `?${new URLSearchParams({ ...filters, cursor: page.nextCursor })}`;
    return reply.type('text/html; charset=utf-8').header('cache-control', 'no-store').send(renderBatchIndex(batches, options.state, next));
  });
}

export function renderBatchIndex(batches: readonly ApiBatch[], state: string | undefined, nextPage: string | undefined): string {
  const running = batches.some((b) => b.state !== 'completed');
  const rows = batches.map(row).join('\n');
  const filter = ['all', 'running', 'cancelling', 'completed']
    .map((s) => (s === (state ?? 'all') ? `<strong>${s}</strong>` : `<a href="/batches${s === 'all' ? '' : `?state=${s}`}">${s}</a>`))
    .join(' · ');
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
${running ? `<meta http-equiv="refresh" content="${REFRESH_SECONDS}">` : ''}
<title>Batches · zimage</title>
<style>
  body { font: 14px/1.4 system-ui, sans-serif; margin: 24px; color: #1d1d1f; background: #fafafa; }
  h1 { font-size: 20px; margin: 0 0 8px; }
  table { border-collapse: collapse; background: #fff; margin-top: 12px; }
  th, td { border-bottom: 1px solid #e5e5e5; padding: 6px 10px; text-align: left; }
  td.n { text-align: right; font-variant-numeric: tabular-nums; }
  .completed { color: #1a7f37; } .running { color: #0550ae; } .cancelling { color: #b42318; }
</style>
</head>
<body>
<h1>Batches</h1>
<nav>${filter}</nav>
${batches.length === 0 ? '<p>No batches.</p>' : `<table>
<thead><tr><th>Batch</th><th>State</th><th>Created</th><th>Total</th><th>Succeeded</th><th>Failed · expired · cancelled</th><th>Pending</th><th>Progress</th><th>Spend</th></tr></thead>
<tbody>
${rows}
</tbody>
</table>`}
${nextPage ? `<p><a rel="next" href="/batches${esc(nextPage)}">Older batches</a></p>` : ''}
</body>
</html>`;
}

function row(batch: ApiBatch): string {
  const c = batch.counts;
  return `<tr data-batch="${esc(batch.batchId)}" data-state="${esc(batch.state)}">
  <td><a href="${esc(batch.galleryUrl)}">${esc(batch.batchId)}</a>${batch.source ? ` <small>${esc(batch.source)}</small>` : ''}</td>
  <td class="${esc(batch.state)}">${esc(batch.state)}</td>
  <td>${esc(batch.createdAt ?? '')}</td>
  <td class="n">${batch.total}</td><td class="n">${c.succeeded}</td><td class="n">${c.failed} · ${c.expired} · ${c.cancelled}</td><td class="n">${c.pending}</td>
  <td class="n">${Math.round(batch.progress * 100)}%</td><td class="n">$${batch.estimatedCostUsd.toFixed(3)}</td>
</tr>`;
}
