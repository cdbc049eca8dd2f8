/**
 * `GET /quota`: the operator's page of the quota — per account the governor's pace, its ceiling
 * and recent throttles; fair share's lanes with each tenant's target and achieved share; every
 * budget with its usage. The same data as `GET /v1/quota`, server-rendered, refreshing itself
 * every few seconds. Browsers authenticate with HTTP Basic (the token as password).
 */
import type { BudgetView, Producer, QuotaOverview } from '@zimage/producer';
import type { GovernorSnapshot, LaneStatus } from '@zimage/shared';
import type { FastifyInstance } from 'fastify';
import { esc } from './routes-gallery.js';

const REFRESH_SECONDS = 5;

export function quotaPageRoutes(app: FastifyInstance, producer: Producer): void {
  app.get('/quota', async (_request, reply) => {
    const quota = await producer.quota();
    return reply.type('text/html; charset=utf-8').header('cache-control', 'no-store').send(renderQuotaPage(quota, new Date()));
  });
}

export function renderQuotaPage(quota: QuotaOverview, now: Date): string {
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta http-equiv="refresh" content="${REFRESH_SECONDS}">
<title>Quota · zimage</title>
<style>
  body { font: 14px/1.4 system-ui, sans-serif; margin: 24px; color: #1d1d1f; background: #fafafa; }
  h1 { font-size: 20px; margin: 0 0 4px; } h2 { font-size: 16px; margin: 24px 0 6px; }
  table { border-collapse: collapse; background: #fff; }
  th, td { border-bottom: 1px solid #e5e5e5; padding: 6px 10px; text-align: left; }
  td.n { text-align: right; font-variant-numeric: tabular-nums; }
  .bar { display: inline-block; height: 8px; background: #0550ae; border-radius: 2px; vertical-align: middle; }
  .target { color: #6e6e73; } .bad { color: #b42318; } .ok { color: #1a7f37; } small { color: #6e6e73; }
</style>
</head>
<body>
<h1>Quota</h1>
<small>As of ${esc(now.toISOString())}; refreshes every ${REFRESH_SECONDS} s. <a href="/batches">Batches</a></small>
<h2>Accounts</h2>
${quota.accounts.length === 0 ? '<p class="accounts-empty">No worker has reported an account in the last minute.</p>' : accountsTable(quota.accounts)}
<h2>Fair share between tenants <small data-fair-share="${quota.fairShare.enabled ? 'on' : 'off'}">${quota.fairShare.enabled ? 'on' : 'off (ZIMAGE_FAIR_SHARE)'}</small></h2>
${quota.fairShare.lanes.length === 0 ? '<p class="lanes-empty">No tenant has jobs waiting or admitted in the last two minutes.</p>' : lanesTable(quota.fairShare.lanes)}
<h2>Budgets</h2>
${quota.budgets.length === 0 ? '<p class="budgets-empty">No budgets.</p>' : budgetsTable(quota.budgets)}
</body>
</html>`;
}

function accountsTable(accounts: readonly GovernorSnapshot[]): string {
  const rows = accounts.map(
    (a) => `<tr data-account="${esc(a.id)}">
  <td>${esc(a.id)} <small>${esc(a.region)}</small></td>
  <td class="n">${a.rpm.toFixed(0)}</td><td class="n">${a.ceilingRpm === null ? '—' : a.ceilingRpm.toFixed(0)}</td><td class="n">${a.sentLastMinute}</td><td class="n">${a.inFlight}</td>
  <td class="n ${a.throttleRatio > 0.01 ? 'bad' : 'ok'}">${(a.throttleRatio * 100).toFixed(1)}%</td>
  <td>${a.disabledReason ? `<span class="bad">disabled: ${esc(a.disabledReason)}</span>` : a.blockedForMs > 0 ? `cooling down ${Math.ceil(a.blockedForMs / 1000)} s` : a.probing ? 'probing' : 'ok'}</td>
</tr>`,
  );
  return `<table class="accounts">
<thead><tr><th>Account</th><th>Pace (rpm)</th><th>Ceiling (rpm)</th><th>Sent, last minute</th><th>In flight</th><th>Throttled, last minute</th><th>State</th></tr></thead>
<tbody>
${rows.join('\n')}
</tbody>
</table>`;
}

function lanesTable(lanes: readonly LaneStatus[]): string {
  const rows = lanes.map(
    (l) => `<tr data-tenant="${esc(l.tenant ?? '')}">
  <td>${l.tenant === null ? '<em>(no tenant)</em>' : esc(l.tenant)}</td>
  <td class="n">${l.weight}</td><td class="n">${l.waiting}</td>
  <td class="n target">${percent(l.targetShare)}</td>
  <td class="n">${percent(l.share)} <span class="bar" style="width:${Math.round(l.share * 120)}px"></span></td>
  <td class="n">${l.admittedRecently}</td>
</tr>`,
  );
  return `<table class="lanes">
<thead><tr><th>Tenant</th><th>Weight</th><th>Waiting</th><th>Target share</th><th>Share, last 2 min</th><th>Admitted, last 2 min</th></tr></thead>
<tbody>
${rows.join('\n')}
</tbody>
</table>`;
}

function budgetsTable(budgets: readonly BudgetView[]): string {
  const rows = budgets.map((b) => {
    const used = b.usage.spentUsd + b.usage.maybeBilledUsd + b.usage.reservedUsd;
    const exhausted = b.kind === 'hard' && b.usage.remainingUsd <= 0;
    return `<tr data-budget="${esc(b.id)}">
  <td>${esc(b.id)}</td><td>${esc(b.scope)} ${esc(b.subject)}</td><td>${esc(b.kind)}</td><td>${esc(b.usage.periodKey)}</td>
  <td class="n">$${b.limitUsd.toFixed(2)}</td><td class="n">$${b.usage.spentUsd.toFixed(3)}</td><td class="n">$${b.usage.maybeBilledUsd.toFixed(3)}</td><td class="n">$${b.usage.reservedUsd.toFixed(3)}</td>
  <td class="n ${exhausted ? 'bad' : ''}">${percent(b.limitUsd > 0 ? used / b.limitUsd : 1)}</td><td class="n">${b.parkedJobs}</td>
</tr>`;
  });
  return `<table class="budgets">
<thead><tr><th>Budget</th><th>Covers</th><th>Kind</th><th>Period</th><th>Limit</th><th>Spent</th><th>Maybe billed</th><th>In flight</th><th>Used</th><th>Parked jobs</th></tr></thead>
<tbody>
${rows.join('\n')}
</tbody>
</table>`;
}

function percent(share: number): string {
  return `${(share * 100).toFixed(share > 0 && share < 0.1 ? 1 : 0)}%`;
}
