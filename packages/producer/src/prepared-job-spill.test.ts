import { existsSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { prepareJob, type PreparedJob } from './prepare-job.js';
import { PreparedJobSpill } from './prepared-job-spill.js';

function job(index: number, extra: Record<string, unknown> = {}): PreparedJob {
  const outcome = prepareJob({ prompt: `a cat number ${index}`, metadata: { sku: `A${index}` }, ...extra }, { now: Date.parse('2026-11-23T10:00:00Z'), batchId: 'b_1', line: index + 2 });
  if (!outcome.ok) throw new Error(JSON.stringify(outcome.issues));
  return outcome.job;
}

async function readAll(spill: PreparedJobSpill, size: number): Promise<PreparedJob[][]> {
  const chunks: PreparedJob[][] = [];
  for await (const chunk of spill.read(size)) chunks.push(chunk);
  return chunks;
}

describe('PreparedJobSpill', () => {
  it('gives back the jobs it was given, in order and in chunks of the size asked', async () => {
    const spill = await PreparedJobSpill.create();
    try {
      const jobs = Array.from({ length: 7 }, (_, i) => job(i, i === 3 ? { idempotencyKey: 'k3', priority: 40, seed: 5 } : i === 5 ? { webhook: { url: 'https://hooks.example/cb?token=t', events: ['job.failed'] } } : {}));
      expect(jobs[5]!.webhook).toEqual({ url: 'https://hooks.example/cb?token=t', events: ['job.failed'] });
      for (const j of jobs) await spill.add(j);
      await spill.finish();
      const chunks = await readAll(spill, 3);
      expect(chunks.map((c) => c.length)).toEqual([3, 3, 1]);
      expect(chunks.flat()).toEqual(jobs);
      expect(spill.count).toBe(7);
    } finally {
      await spill.remove();
    }
  });

  it('keeps text that JSON escapes or UTF-8 spreads over several bytes, across its write and read buffers', async () => {
    const spill = await PreparedJobSpill.create();
    try {
      // Over a megabyte of three-byte characters, so reads split characters between chunks.
      const jobs = Array.from({ length: 500 }, (_, i) => job(i, { prompt: `翠绿色的杯子 ${'手机壳'.repeat(260)} ${i}`, metadata: { note: 'line\nbreak "quoted" \u2028 😀' } }));
      for (const j of jobs) await spill.add(j);
      await spill.finish();
      expect((await readAll(spill, 1000)).flat()).toEqual(jobs);
    } finally {
      await spill.remove();
    }
  });

  it('removes its file and folder, also when it was never finished', async () => {
    const spill = await PreparedJobSpill.create();
    await spill.add(job(1));
    expect(existsSync(spill.dir)).toBe(true);
    await spill.remove();
    expect(existsSync(spill.dir)).toBe(false);
  });
});
