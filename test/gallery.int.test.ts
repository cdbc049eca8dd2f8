/**
 * The batch review page in a real headless Chromium (Debian's `chromium`, driven by
 * playwright-core): thumbnails load through the API, failed items show their error, user text is
 * escaped, the batch's budgets are shown with their usage, and a screenshot is saved to
 * test-results/gallery.png.
 */
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { chromium, type Browser } from 'playwright-core';
import { describe, expect, it } from 'vitest';
import { startApi, TOKEN } from './support/api-harness.js';
import { REPO_ROOT } from './support/run-cli.js';

const CHROMIUM = process.env['CHROMIUM_PATH'] ?? '/usr/bin/chromium';

describe('the batch gallery', () => {
  it('shows thumbnails, prompts, metadata and errors in Chromium, and refreshes while the batch runs', async () => {
    await using api = await startApi({ worker: false });
    const items = [
      { prompt: 'A white ceramic mug on oak', size: '512*512', metadata: { sku: 'MUG-1' } },
      { prompt: '一只坐着的橘猫', size: '768*512', metadata: { sku: 'CAT-1' } },
      { prompt: 'zimage-test-unsafe <script>window.pwned = 1</script> teapot', size: '512*512', metadata: { sku: '<b>T</b>' } },
    ];
    const created = await api.call('POST', '/v1/batches', { body: items });
    expect(created.status).toBe(202);
    const galleryUrl = `${api.url}${created.body.galleryUrl}`;
    await api.call('PUT', '/v1/budgets/catalogue', { body: { scope: 'batch', subject: created.body.batchId, limitUsd: 1 } });
    await api.call('PUT', '/v1/budgets/other-batch', { body: { scope: 'batch', subject: 'b_other', limitUsd: 1 } });

    let browser: Browser | undefined;
    try {
      browser = await chromium.launch({ executablePath: CHROMIUM, args: ['--no-sandbox', '--disable-gpu'] });
      const context = await browser.newContext({ httpCredentials: { username: 'ops', password: TOKEN }, viewport: { width: 1100, height: 800 } });
      const page = await context.newPage();

      // Running (no worker yet): pending cards, and the page asks to be refreshed.
      await page.goto(galleryUrl);
      expect(await page.locator('meta[http-equiv="refresh"]').count()).toBe(1);
      expect(await page.locator('article.card').count()).toBe(3);

      await api.stack.startWorker();
      // The page refreshes itself (every 3 s) until the batch is complete.
      await page.waitForSelector('.stats[data-state="completed"]', { timeout: 20_000 });
      expect(await page.locator('meta[http-equiv="refresh"]').count()).toBe(0);

      const succeeded = page.locator('article[data-state="succeeded"]');
      expect(await succeeded.count()).toBe(2);
      // (Browser-side code as a string: the tests' TypeScript has no DOM types.)
      await page.waitForFunction("[...document.querySelectorAll('img.thumb')].every((img) => img.complete && img.naturalWidth > 0)");
      type Img = { naturalWidth: number; naturalHeight: number };
      const sizes = await page.$$eval('img.thumb', (imgs) => imgs.map((img) => [(img as unknown as Img).naturalWidth, (img as unknown as Img).naturalHeight]));
      expect(sizes).toEqual([
        [512, 512],
        [768, 512],
      ]);
      expect(await page.locator('article[data-state="succeeded"]').first().innerText()).toContain('sku: MUG-1');
      expect(await page.getByText('一只坐着的橘猫').count()).toBe(1);

      // The budgets its jobs spend against, with their usage; not other batches' budgets.
      expect(await page.locator('li[data-budget="catalogue"]').innerText()).toMatch(/^catalogue \(batch b_[^,]+, hard\): \$0\.030 spent of \$1\.00$/);
      expect(await page.locator('li[data-budget="other-batch"]').count()).toBe(0);

      const failed = page.locator('article[data-state="failed"]');
      expect(await failed.count()).toBe(1);
      expect(await failed.locator('.error').innerText()).toContain('UPSTREAM_CONTENT_REJECTED');
      // User text is shown as text, never run or rendered as markup.
      expect(await failed.locator('.prompt').innerText()).toContain('<script>window.pwned = 1</script>');
      expect(await failed.locator('.meta').innerText()).toContain('sku: <b>T</b>');
      expect(await page.evaluate('window.pwned')).toBeUndefined();

      const dir = join(REPO_ROOT, 'test-results');
      mkdirSync(dir, { recursive: true });
      await page.screenshot({ path: join(dir, 'gallery.png'), fullPage: true });

      // Without credentials: a Basic challenge, not the page.
      const denied = await fetch(galleryUrl);
      expect(denied.status).toBe(401);
      expect(denied.headers.get('www-authenticate')).toContain('Basic');
      // Only this batch's images can be fetched through it.
      const other = await page.request.get(`${api.url}/batches/${created.body.batchId}/images/not-a-job`);
      expect(other.status()).toBe(404);
    } finally {
      await browser?.close();
    }
  });
});
