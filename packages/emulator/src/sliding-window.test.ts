import { describe, expect, it } from 'vitest';
import { SlidingWindow } from './sliding-window.js';

describe('SlidingWindow', () => {
  it('counts events younger than the window and forgets older ones', () => {
    const window = new SlidingWindow(1000);
    window.push(0);
    window.push(500);
    window.push(999);
    expect(window.count(999)).toBe(3);
    expect(window.count(1000)).toBe(2); // the event at 0 is exactly 1000 ms old
    expect(window.count(1499)).toBe(2);
    expect(window.count(1500)).toBe(1);
    expect(window.count(5000)).toBe(0);
  });

  it('stays correct across compaction with many events', () => {
    const window = new SlidingWindow(100);
    for (let t = 0; t < 100_000; t++) {
      window.push(t);
      if (t % 997 === 0) expect(window.count(t)).toBe(Math.min(t + 1, 100));
    }
    expect(window.count(100_000)).toBe(99);
  });

  it('clears', () => {
    const window = new SlidingWindow(1000);
    window.push(1);
    window.clear();
    expect(window.count(2)).toBe(0);
  });
});
