/**
 * The quota page and its JSON twin, against a real worker, Redis and the emulator, in a real
 * headless Chromium (Debian's `chromium`, driven by playwright-core): per account the governor's
 * pace and throttles, each tenant's weight and share under fair share, budgets with usage; the
 * page refreshes itself, and a screenshot is saved to
 * test-results/quota.png. Weights are set through `PUT /v1/tenants/:tenant`.
 */
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { chromium, type Browser } from 'playwright-core';
import { describe, expect, it } from 'vitest';
import { startApi, TOKEN } from './support/api-harness.js';
import { REPO_ROOT } from './support/run-cli.js';
import { until } from './support/until.js';

const CHROMIUM = process.env['CHROMIUM_PATH'] ?? '/usr/bin/chromium';
const WAIT_MS = 60_000;

describe('the quota page', () => {
  it("shows each account's pace, each tenant's share and every budget, live, in Chromium", async () => {
    await using api = await startApi({ worker: false, rpm: 1200 });
    const weight = await api.call('PUT', '/v1/tenants/acme', { body: { weight: 3 } });
    expect(weight).toMatchObject({ status: 200, body: { tenant: 'acme', weight: 3 } });
    const badWeight = await api.call('PUT', '/v1/tenants/acme', { body: { weight: 0 } });
    expect(badWeight.status).toBe(400);
    expect(badWeight.body.error.message).toContain('weight: must be a whole number from 1 to 1000');
    expect((await api.call('PUT', '/v1/tenants/not%20valid', { body: { weight: 2 } })).body.error.message).toContain('tenant: must match');
    await api.call('PUT', '/v1/budgets/acme-daily', { body: { scope: 'tenant', subject: 'acme', limitUsd: 5, period: 'day' } });
    await api.call('PUT', '/v1/budgets/fleet', { body: { scope: 'account', subject: '*', limitUsd: 100, kind: 'soft' } });

    const worker = await api.stack.startWorker({ fairShare: true, fairShareIntervalMs: 50, concurrency: 4 });
    const requests = (tenant: string, n: number) => Array.from({ length: n }, (_, i) => ({ prompt: `A tile for ${tenant} ${i}`, size: '512*512', tenant }));
    const acme = await api.call('POST', '/v1/batches', { body: requests('acme', 30) });
    const globex = await api.call('POST', '/v1/batches', { body: requests('globex', 30) });
    expect([acme.status, globex.status]).toEqual([202, 202]);
    await api.stack.waitForBatch(acme.body.batchId, WAIT_MS);
    await api.stack.waitForBatch(globex.body.batchId, WAIT_MS);

    // The JSON twin: the account the worker reported, both lanes with their weights, the budgets' usage.
    // biome-ignore lint/suspicious/noExplicitAny: the JSON the API answered
    let quota: any;
    await until(async () => {
      quota = (await api.call('GET', '/v1/quota')).body;
      return quota.accounts.length === 1 && quota.fairShare.lanes.length === 2;
    }, WAIT_MS);
    expect(quota.fairShare.enabled).toBe(true);
    expect(quota.accounts[0]).toMatchObject({ id: 'test', region: 'singapore' });
    const lanes = Object.fromEntries(quota.fairShare.lanes.map((l: { tenant: string }) => [l.tenant, l]));
    expect(lanes['acme']).toMatchObject({ weight: 3, waiting: 0, admittedRecently: 30 });
    expect(lanes['globex']).toMatchObject({ weight: 1, waiting: 0, admittedRecently: 30, share: 0.5 });
    const daily = quota.budgets.find((b: { id: string }) => b.id === 'acme-daily');
    expect(daily.usage.spentUsd).toBeCloseTo(30 * 0.015, 9);

    let browser: Browser | undefined;
    try {
      browser = await chromium.launch({ executablePath: CHROMIUM, args: ['--no-sandbox', '--disable-gpu'] });
      const context = await browser.newContext({ httpCredentials: { username: 'ops', password: TOKEN }, viewport: { width: 1100, height: 800 } });
      const page = await context.newPage();
      await page.goto(`${api.url}/quota`);
      expect(await page.locator('meta[http-equiv="refresh"]').count()).toBe(1);
      expect(await page.locator('tr[data-account="test"]').innerText()).toContain('singapore');
      expect(await page.locator('[data-fair-share="on"]').count()).toBe(1);
      const acmeRow = await page.locator('tr[data-tenant="acme"]').innerText();
      expect(acmeRow).toMatch(/^acme\s+3\s+0\s/);
      expect(acmeRow).toContain('50%');
      expect(await page.locator('tr[data-budget="acme-daily"]').innerText()).toContain('$5.00');
      expect(await page.locator('tr[data-budget="fleet"]').innerText()).toContain('soft');

      // Live: a tenant that starts queueing shows up on a later refresh, with its jobs waiting.
      await worker.close();
      await api.call('POST', '/v1/batches', { body: requests('initech', 5) });
      await page.waitForSelector('tr[data-tenant="initech"]', { timeout: 20_000 });
      expect(await page.locator('tr[data-tenant="initech"]').innerText()).toMatch(/^initech\s+1\s+5\s/);

      const dir = join(REPO_ROOT, 'test-results');
      mkdirSync(dir, { recursive: true });
      await page.screenshot({ path: join(dir, 'quota.png'), fullPage: true });

      // Without credentials: a Basic challenge, not the page.
      const denied = await fetch(`${api.url}/quota`);
      expect(denied.status).toBe(401);
      expect(denied.headers.get('www-authenticate')).toContain('Basic');
    } finally {
      await browser?.close();
    }
  });
});
