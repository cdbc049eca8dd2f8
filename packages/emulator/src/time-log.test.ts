import { describe, expect, it } from 'vitest';
import { TimeLog } from './time-log.js';

describe('TimeLog', () => {
  it('counts events in half-open intervals', () => {
    const log = new TimeLog(60_000);
    for (const t of [100, 200, 200, 300]) log.push(t);
    expect(log.count()).toBe(4);
    expect(log.count(200, 300)).toBe(2);
    expect(log.count(200, 301)).toBe(3);
    expect(log.count(0, 100)).toBe(0);
    expect(log.count(300, 200)).toBe(0);
  });

  it('keeps times sorted when the clock steps back', () => {
    const log = new TimeLog(60_000);
    log.push(1000);
    log.push(900);
    expect(log.count(1000, 1001)).toBe(2);
  });

  it('forgets events older than its retention, across compaction', () => {
    const log = new TimeLog(1000);
    for (let t = 0; t < 10_000; t++) log.push(t);
    expect(log.count()).toBe(1001); // [8999, 9999]
    expect(log.count(9000, 10_000)).toBe(1000);
    log.clear();
    expect(log.count()).toBe(0);
  });
});
