/**
 * Counts events inside a trailing time window.
 *
 * Timestamps are kept in arrival order in an array used as a deque: `count(now)` drops expired
 * entries from the front, so every timestamp is pushed and removed once (O(1) amortised) and the
 * memory held is only what the window currently covers — fine for 100k requests.
 *
 * Callers must pass non-decreasing `now` values (a monotonic clock such as `performance.now()`).
 */
export class SlidingWindow {
  #times: number[] = [];
  #head = 0;

  /** @param windowMs Window length in ms; an event at time t counts while `now - t < windowMs`. */
  constructor(public windowMs: number) {}

  push(now: number): void {
    this.#times.push(now);
  }

  count(now: number): number {
    this.#prune(now);
    return this.#times.length - this.#head;
  }

  clear(): void {
    this.#times = [];
    this.#head = 0;
  }

  #prune(now: number): void {
    const oldestKept = now - this.windowMs;
    const times = this.#times;
    let head = this.#head;
    while (head < times.length && (times[head] ?? Infinity) <= oldestKept) head++;
    // Compact only once the dead prefix dominates, so the splice cost is amortised over the
    // removals that produced it.
    if (head > 1024 && head * 2 > times.length) {
      this.#times = times.slice(head);
      head = 0;
    }
    this.#head = head;
  }
}
