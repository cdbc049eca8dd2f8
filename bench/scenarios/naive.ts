/**
 * Baseline (a): what a user would write without a queue — p-limit, the API called directly, and
 * exponential backoff with jitter on 429. Same emulator settings and jobs as zimage.
 */
import { createEmulator } from '@zimage/emulator';
import pLimit from 'p-limit';
import { quotaEmulator, summarise, type QuotaOptions, type QuotaRun } from './quota.js';
import { API_KEY, sleep } from '../support.js';

const PATH = '/api/v1/services/aigc/multimodal-generation/generation';

export async function runNaive(options: QuotaOptions, concurrency = 16): Promise<QuotaRun> {
  const emulator = await createEmulator(quotaEmulator(options.quotaPerMinute));
  try {
    const limit = pLimit(concurrency);
    const started = Date.now();
    const deadline = started + options.baselineLimitSeconds * 1000;
    let completed = 0;
    await Promise.all(
      Array.from({ length: options.jobs }, (_, i) =>
        limit(async () => {
          for (let attempt = 0; Date.now() < deadline; attempt++) {
            const response = await fetch(`${emulator.url}${PATH}`, {
              method: 'POST',
              headers: { authorization: `Bearer ${API_KEY}`, 'content-type': 'application/json' },
              body: JSON.stringify({ model: 'z-image-turbo', input: { messages: [{ role: 'user', content: [{ text: `Catalogue item ${i}` }] }] }, parameters: { size: '512*512' } }),
            });
            const body = (await response.json()) as { output?: { choices: { message: { content: { image?: string }[] } }[] } };
            if (response.status === 429) {
              await sleep(Math.min(30_000, 1000 * 2 ** attempt, Math.max(0, deadline - Date.now())) * (0.5 + Math.random() / 2));
              continue;
            }
            const url = body.output?.choices[0]?.message.content.find((c) => c.image)?.image;
            if (!url) throw new Error(`naive baseline: HTTP ${response.status}`);
            await (await fetch(url)).arrayBuffer();
            completed += 1;
            return;
          }
        }),
      ),
    );
    const seconds = (Math.min(Date.now(), deadline) - started) / 1000;
    return summarise(options.jobs, completed, seconds, options.quotaPerMinute, emulator.stats());
  } finally {
    await emulator.close();
  }
}
