/**
 * Event times (ms) in ascending order, counted over any half-open interval by binary search.
 * Times older than `retentionMs` before the newest are dropped (amortised O(1) per push), so a
 * long-running emulator holds at most that much history.
 */
export class TimeLog {
  #times: number[] = [];
  #head = 0;

  constructor(private readonly retentionMs: number) {}

  /** Appends `t`, raised to the newest time if a clock step made it smaller. */
  push(t: number): void {
    const times = this.#times;
    const stored = Math.max(t, times[times.length - 1] ?? -Infinity);
    times.push(stored);
    let head = this.#head;
    while ((times[head] ?? Infinity) < stored - this.retentionMs) head++;
    if (head > 1024 && head * 2 > times.length) {
      this.#times = times.slice(head);
      head = 0;
    }
    this.#head = head;
  }

  /** Events with a time in `[fromMs, toMs)`. */
  count(fromMs = -Infinity, toMs = Infinity): number {
    if (!(toMs > fromMs)) return 0;
    return this.#lowerBound(toMs) - this.#lowerBound(fromMs);
  }

  clear(): void {
    this.#times = [];
    this.#head = 0;
  }

  /** Index of the first kept time `>= t`. */
  #lowerBound(t: number): number {
    const times = this.#times;
    let lo = this.#head;
    let hi = times.length;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if ((times[mid] ?? Infinity) < t) lo = mid + 1;
      else hi = mid;
    }
    return lo;
  }
}
