/**
 * One read shared by the metrics a scrape collects together: prom-client calls every metric's
 * `collect` at once, so the first call starts the read and the others, in the same tick, share it.
 * The next scrape reads again.
 */
export function oncePerScrape<T>(read: () => Promise<T>): () => Promise<T> {
  let current: Promise<T> | undefined;
  return () =>
    (current ??= read().finally(() => {
      setTimeout(() => (current = undefined), 0);
    }));
}
