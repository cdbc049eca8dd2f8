/**
 * A discrete-event simulation of the governor's pace (the pure functions of
 * packages/worker/src/governor/pace.ts) against rate limiters, in virtual time: minutes of traffic
 * in a second, for exploring the rules before `pnpm bench` measures the real fleet.
 *
 *   node --conditions=zimage-source --import tsx bench/governor-sim.ts [model] [--configured=RPM] [--jobs=N] [--trace]
 *
 * The fleet is one shared pace state (no Redis, no compare-and-set latency), `--callers` jobs at
 * once, each: reserve a slot, call, and on a throttle try again 100–300 ms later. Latency
 * 0.3–0.8 s, like the bench. The limiters mirror the emulator's models in a few lines each.
 */
import { applyFeedback, defaultPaceConfig, initialPaceState, paceView, reserve, type PaceConfig, type PaceState } from '../packages/worker/src/governor/pace.js';

type Verdict = 'ok' | 'rate' | 'ramp' | 'concurrency';
interface Limiter {
  tryAccept(now: number): Verdict;
  done(now: number): void;
  capacity(from: number, to: number): number;
}

const argv = process.argv.slice(2);
const flag = (name: string, fallback: number) => Number(argv.find((a) => a.startsWith(`--${name}=`))?.split('=')[1] ?? fallback);
const model = argv.find((a) => !a.startsWith('--')) ?? 'all';
const quota = flag('quota', 600);
const windowMs = flag('window', 60_000);
const trace = argv.includes('--trace');

class Window {
  times: number[] = [];
  constructor(readonly ms: number) {}
  count(now: number): number {
    while (this.times.length > 0 && (this.times[0] as number) <= now - this.ms) this.times.shift();
    return this.times.length;
  }
}

function perSecond(rpm: number, burst: boolean): Limiter {
  const second = new Window(1000);
  const minute = new Window(60_000);
  const baseline = new Window(11_000);
  const rps = rpm / 60;
  return {
    tryAccept(now) {
      if (second.count(now) + 1 > rps || minute.count(now) + 1 > rpm) return 'rate';
      const inSecond = second.count(now);
      const base = (baseline.count(now) - inSecond) / 10;
      if (burst && inSecond + 1 > Math.max(Math.floor(rps * 0.6), 2 * base)) return 'ramp';
      second.times.push(now);
      minute.times.push(now);
      baseline.times.push(now);
      return 'ok';
    },
    done() {},
    capacity: (from, to) => (rpm * (to - from)) / 60_000,
  };
}

function fixedWindow(rpm: number, ms: number): Limiter {
  const limit = Math.floor((rpm * ms) / 60_000);
  let start: number | undefined;
  let used = 0;
  let index = -1;
  return {
    tryAccept(now) {
      start ??= now;
      const i = Math.floor((now - start) / ms);
      if (i !== index) {
        index = i;
        used = 0;
      }
      if (used + 1 > limit) return 'rate';
      used += 1;
      return 'ok';
    },
    done() {},
    capacity: (from, to) => limit * (Math.floor((to - (start ?? from)) / ms) - Math.floor((Math.max(from, start ?? from) - (start ?? from)) / ms) + 1),
  };
}

function slidingLog(rpm: number, ms: number): Limiter {
  const limit = Math.floor((rpm * ms) / 60_000);
  const window = new Window(ms);
  return {
    tryAccept(now) {
      if (window.count(now) + 1 > limit) return 'rate';
      window.times.push(now);
      return 'ok';
    },
    done() {},
    capacity: (from, to) => limit * Math.ceil((to - from) / ms),
  };
}

function tokenBucket(rpm: number, size: number): Limiter {
  let tokens = size;
  let at = 0;
  return {
    tryAccept(now) {
      tokens = Math.min(size, tokens + ((now - at) * rpm) / 60_000);
      at = now;
      if (tokens < 1) return 'rate';
      tokens -= 1;
      return 'ok';
    },
    done() {},
    capacity: (from, to) => size + (rpm * (to - from)) / 60_000,
  };
}

function concurrency(rpm: number, cap: number, meanLatencyMs: number): Limiter {
  const rate = perSecond(rpm, false);
  let inFlight = 0;
  return {
    tryAccept(now) {
      if (inFlight >= cap) return 'concurrency';
      const verdict = rate.tryAccept(now);
      if (verdict === 'ok') inFlight += 1;
      return verdict;
    },
    done() {
      inFlight -= 1;
    },
    capacity: (from, to) => Math.min((rpm * (to - from)) / 60_000, (cap * (to - from)) / meanLatencyMs),
  };
}

function drift(steps: { atMs: number; rpm: number }[]): Limiter & { rpmAt(now: number): number } {
  const second = new Window(1000);
  let start: number | undefined;
  const rpmAt = (now: number) => [...steps].reverse().find((s) => now - (start ?? now) >= s.atMs)?.rpm ?? (steps[0] as { rpm: number }).rpm;
  return {
    rpmAt,
    tryAccept(now) {
      start ??= now;
      if (second.count(now) + 1 > Math.max(1, rpmAt(now) / 60)) return 'rate';
      second.times.push(now);
      return 'ok';
    },
    done() {},
    capacity(from, to) {
      let sum = 0;
      for (let t = from; t < to; t += 100) sum += (rpmAt(t) * Math.min(100, to - t)) / 60_000;
      return sum;
    },
  };
}

/** A tiny event queue: [time, seq, fn], earliest first. */
class Clock {
  now = 1_700_000_000_000;
  #queue: [number, number, () => void][] = [];
  #seq = 0;
  at(time: number, fn: () => void): void {
    const item: [number, number, () => void] = [Math.max(time, this.now), this.#seq++, fn];
    let lo = 0;
    let hi = this.#queue.length;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      const other = this.#queue[mid] as [number, number, () => void];
      if (other[0] < item[0] || (other[0] === item[0] && other[1] < item[1])) lo = mid + 1;
      else hi = mid;
    }
    this.#queue.splice(lo, 0, item);
  }
  run(until: () => boolean): void {
    while (this.#queue.length > 0 && !until()) {
      const [time, , fn] = this.#queue.shift() as [number, number, () => void];
      this.now = time;
      fn();
    }
  }
}

interface Result {
  model: string;
  configured: number;
  jobs: number;
  seconds: number;
  efficiency: number;
  throttleRatio: number;
  requests: number;
  throttled: number;
  maxSentPerMinute: number;
  final: ReturnType<typeof paceView>;
}

export function simulate(name: string, limiter: Limiter, options: { configured: number; jobs: number; callers: number; pace?: Partial<PaceConfig>; seed?: number }): Result {
  const config = { ...defaultPaceConfig(options.configured), ...options.pace };
  const clock = new Clock();
  const started = clock.now;
  let state: PaceState = initialPaceState(config, clock.now);
  let seed = options.seed ?? 1;
  const random = () => ((seed = (seed * 1103515245 + 12345) % 2 ** 31) / 2 ** 31);
  let remaining = options.jobs;
  let completed = 0;
  let requests = 0;
  let throttled = 0;
  let leaseSeq = 0;
  const sentTimes: number[] = [];
  let maxSent = 0;
  let lastTrace = 0;

  const attempt = () => {
    const leaseId = `l${leaseSeq++}`;
    const { state: next, reservation } = reserve(state, clock.now, config, { urgent: false, leaseId });
    state = next;
    if (!reservation.granted) {
      clock.at(clock.now + Math.min(1000, Math.max(5, reservation.retryInMs)), attempt);
      return;
    }
    const lease = reservation.lease;
    clock.at(reservation.at, () => {
      requests += 1;
      sentTimes.push(clock.now);
      while ((sentTimes[0] as number) <= clock.now - 60_000) sentTimes.shift();
      maxSent = Math.max(maxSent, clock.now - started >= 60_000 ? sentTimes.length : 0);
      const verdict = limiter.tryAccept(clock.now + 1);
      if (verdict !== 'ok') {
        throttled += 1;
        clock.at(clock.now + 10, () => {
          state = applyFeedback(state, clock.now, { kind: 'throttled', lease, ramp: verdict === 'ramp', unnamed: verdict === 'concurrency' }, config);
          if (argv.includes('--throttles')) {
            const v = paceView(state, clock.now, config);
            const sentT = clock.now - 10;
            const last1s = sentTimes.filter((t) => t > sentT - 1000 && t <= sentT).map((t) => Math.round(t - sentT));
            console.log(`  ${((clock.now - started) / 1000).toFixed(1)}s THROTTLE ${verdict} last1s=${last1s.join(',')} lease=${JSON.stringify({ n: lease.inFlight, c: lease.count, b: lease.budgetRpm })} -> rpm=${v.rpm} ceiling=${v.ceilingRpm} budget=${v.budgetRpm} cap=${v.inFlightCap} blocked=${v.blockedForMs} pp=${JSON.stringify(state.paceProbe)} lastDec=${((state.lastDecreaseAt - started) / 1000).toFixed(1)}`);
          }
          clock.at(clock.now + 100 + random() * 200, attempt);
        });
        return;
      }
      clock.at(clock.now + 300 + random() * 500, () => {
        limiter.done(clock.now);
        state = applyFeedback(state, clock.now, { kind: 'ok', lease }, config);
        clock.at(clock.now + 20, () => {
          completed += 1;
          if (trace && clock.now - lastTrace >= 5_000) {
            lastTrace = clock.now;
            const v = paceView(state, clock.now, config);
            console.log(`${((clock.now - started) / 1000).toFixed(0)}s rpm=${v.rpm} ceiling=${v.ceilingRpm} budget=${v.budgetRpm} sent60=${v.sentLastMinute} probing=${v.probing} cap=${v.inFlightCap} inflight=${v.inFlight} done=${completed} thr=${throttled}`);
          }
          if (remaining > 0) {
            remaining -= 1;
            attempt();
          }
        });
      });
    });
  };
  for (let i = 0; i < Math.min(options.callers, options.jobs); i++) {
    remaining -= 1;
    attempt();
  }
  clock.run(() => completed >= options.jobs);
  const seconds = (clock.now - started) / 1000;
  return {
    model: name,
    configured: options.configured,
    jobs: options.jobs,
    seconds: Math.round(seconds * 10) / 10,
    efficiency: Math.round((completed / limiter.capacity(started, clock.now)) * 1000) / 1000,
    throttleRatio: Math.round((throttled / requests) * 10_000) / 10_000,
    requests,
    throttled,
    maxSentPerMinute: maxSent,
    final: paceView(state, clock.now, config),
  };
}

const jobsFor = (ms: number) => Math.max(flag('jobs', 0), Math.round((quota * 5 * ms) / 60_000));
const runs: [string, () => Limiter, number, number][] = [
  ['per-second', () => perSecond(quota, true), quota, jobsFor(60_000)],
  ['per-second -50%', () => perSecond(quota, true), quota / 2, jobsFor(60_000) / 3],
  ['per-second +50%', () => perSecond(quota, true), quota * 1.5, jobsFor(60_000) / 3],
  ['fixed-window', () => fixedWindow(quota, windowMs), quota, jobsFor(windowMs)],
  ['sliding-log', () => slidingLog(quota, windowMs), quota, jobsFor(windowMs)],
  ['token-bucket', () => tokenBucket(quota, 20), quota, jobsFor(60_000)],
  ['concurrency', () => concurrency(quota, 4, 550), quota, jobsFor(60_000)],
  ['drift', () => drift([{ atMs: 0, rpm: quota }, { atMs: 90_000, rpm: quota * 0.6 }, { atMs: 180_000, rpm: quota }]), quota, jobsFor(60_000)],
];
const configured = flag('configured', 0);
for (const [name, make, rpm, jobs] of runs) {
  if (model !== 'all' && name !== model) continue;
  const paceArg = argv.find((a) => a.startsWith('--pace='))?.slice('--pace='.length);
  const pace = paceArg ? (JSON.parse(paceArg) as Partial<PaceConfig>) : undefined;
  const result = simulate(name, make(), { configured: configured || rpm, jobs: Math.round(jobs), callers: flag('callers', 40), ...(pace ? { pace } : {}) });
  const { final, ...rest } = result;
  console.log(JSON.stringify({ ...rest, budget: final.budgetRpm, ceiling: final.ceilingRpm, cap: final.inFlightCap }));
}
