/**
 * Group commit: callers that arrive while a round is running for their key wait, and the next
 * round serves all of them with one operation (one folder fsync, one compare-and-set).
 *
 * A caller is only ever served by a round that starts after it arrived. That is what makes the
 * sharing safe: an fsync that began before a caller's rename would not cover it, and a
 * compare-and-set computed before a caller asked could not have reserved its slot.
 *
 * `run` returns one result per item, in order; if it throws, every caller of that round gets the
 * error. Rounds for different keys run independently.
 */
export function groupCommit<Item, Result>(run: (key: string, items: readonly Item[]) => Promise<readonly Result[]>): (key: string, item: Item) => Promise<Result> {
  const waiting = new Map<string, { item: Item; resolve: (result: Result) => void; reject: (error: unknown) => void }[]>();
  const running = new Set<string>();

  async function drain(key: string): Promise<void> {
    running.add(key);
    try {
      for (let round = waiting.get(key); round && round.length > 0; round = waiting.get(key)) {
        waiting.delete(key);
        try {
          const results = await run(key, round.map((w) => w.item));
          round.forEach((w, i) => {
            if (i < results.length) w.resolve(results[i] as Result);
            else w.reject(new Error(`group commit for ${key} returned ${results.length} results for ${round.length} callers`));
          });
        } catch (error) {
          for (const w of round) w.reject(error);
        }
      }
    } finally {
      running.delete(key);
    }
  }

  return (key, item) =>
    new Promise<Result>((resolve, reject) => {
      const round = waiting.get(key) ?? [];
      round.push({ item, resolve, reject });
      waiting.set(key, round);
      if (!running.has(key)) void drain(key);
    });
}
