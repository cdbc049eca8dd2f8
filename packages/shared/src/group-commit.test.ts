import { describe, expect, it } from 'vitest';
import { groupCommit } from './group-commit.js';

function deferred() {
  let release!: () => void;
  const done = new Promise<void>((resolve) => (release = resolve));
  return { done, release };
}

describe('groupCommit', () => {
  it('serves callers that arrive during a round with one next round, each getting its own result', async () => {
    const rounds: string[][] = [];
    const gates: ReturnType<typeof deferred>[] = [];
    const commit = groupCommit<string, string>(async (_key, items) => {
      rounds.push([...items]);
      const gate = deferred();
      gates.push(gate);
      await gate.done;
      return items.map((i) => i.toUpperCase());
    });
    const a = commit('k', 'a');
    await Promise.resolve();
    // a's round is running: b, c and d arrive during it and must share the next round
    const rest = [commit('k', 'b'), commit('k', 'c'), commit('k', 'd')];
    expect(rounds).toEqual([['a']]);
    gates[0]?.release();
    expect(await a).toBe('A');
    await new Promise((r) => setImmediate(r));
    expect(rounds).toEqual([['a'], ['b', 'c', 'd']]);
    gates[1]?.release();
    expect(await Promise.all(rest)).toEqual(['B', 'C', 'D']);
  });

  it('never serves a caller with a round that started before it arrived', async () => {
    const started: number[] = [];
    let arrivals = 0;
    const commit = groupCommit<number, number>(async (_key, items) => {
      started.push(arrivals);
      await new Promise((r) => setTimeout(r, 2));
      return items.map(() => started.length - 1);
    });
    const served = await Promise.all(
      Array.from({ length: 40 }, async (_, i) => {
        await new Promise((r) => setTimeout(r, i % 7));
        const arrivedAfter = arrivals++;
        const round = await commit('k', i);
        return { arrivedAfter, roundStartedAfter: started[round] ?? -1 };
      }),
    );
    // the round that served a caller started after that caller arrived
    for (const s of served) expect(s.roundStartedAfter).toBeGreaterThan(s.arrivedAfter);
    expect(started.length).toBeLessThan(40);
  });

  it('keeps keys apart and gives every caller of a failed round the error', async () => {
    const seen: string[] = [];
    const commit = groupCommit<number, number>(async (key, items) => {
      seen.push(`${key}:${items.join(',')}`);
      if (key === 'bad') throw new Error('disk gone');
      return items.map((n) => n * 2);
    });
    const results = await Promise.allSettled([commit('good', 1), commit('bad', 2), commit('bad', 3)]);
    expect(results[0]).toEqual({ status: 'fulfilled', value: 2 });
    expect(results[1]).toMatchObject({ status: 'rejected', reason: { message: 'disk gone' } });
    expect(results[2]).toMatchObject({ status: 'rejected', reason: { message: 'disk gone' } });
    expect(seen).toEqual(['good:1', 'bad:2', 'bad:3']);
    // the key recovers: a later caller starts a fresh round
    await expect(commit('bad', 4)).rejects.toThrow('disk gone');
    expect(seen.at(-1)).toBe('bad:4');
  });

  it('rejects callers left without a result instead of hanging them', async () => {
    const commit = groupCommit<number, number>(async () => [1]);
    const first = commit('k', 1);
    const [second, third] = [commit('k', 2), commit('k', 3)];
    expect(await first).toBe(1);
    expect(await second).toBe(1);
    await expect(third).rejects.toThrow('returned 1 results for 2 callers');
  });
});
