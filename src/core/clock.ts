/** The one source of time. Everything that reads the time takes a Clock, so tests can move it. */
export interface Clock {
  /** Milliseconds since the epoch. */
  now(): number;
}

export const systemClock: Clock = { now: () => Date.now() };

/** A timer started through a Scheduler. */
export interface Timer {
  /** Stops it; safe to call more than once, and after it fired. */
  clear(): void;
}

/**
 * The one source of timers: holds, sweeps and idle timers start theirs here, so that a test can
 * drive them with a FakeClock instead of sleeping.
 */
export interface Scheduler {
  /** Runs fn once, after ms. */
  setTimeout(fn: () => void, ms: number): Timer;
  /** Runs fn every ms. A `background` one never keeps the process alive on its own. */
  setInterval(fn: () => void, ms: number, opts?: { background?: boolean }): Timer;
  /** A signal that aborts with a "TimeoutError" after ms, like AbortSignal.timeout. */
  timeout(ms: number): AbortSignal;
}

export const systemScheduler: Scheduler = {
  setTimeout(fn, ms) {
    const t = setTimeout(fn, ms);
    return { clear: () => clearTimeout(t) };
  },
  setInterval(fn, ms, opts) {
    const t = setInterval(fn, ms);
    if (opts?.background) t.unref();
    return { clear: () => clearInterval(t) };
  },
  timeout: (ms) => AbortSignal.timeout(ms),
};

interface FakeTimer {
  due: number;
  /** Set for an interval: when it is due again after firing. */
  every: number | undefined;
  fn: () => void;
  order: number;
}

/**
 * A clock that only moves when told to, and the timers that move with it; for tests.
 * advance() fires every timer that falls due on the way, in order, each at its own time.
 */
export class FakeClock implements Clock, Scheduler {
  private readonly timers = new Set<FakeTimer>();
  private started = 0;

  constructor(private t: number = Date.UTC(2026, 0, 1)) {}

  now(): number {
    return this.t;
  }

  advance(ms: number): void {
    const end = this.t + ms;
    for (let next = this.nextDue(end); next; next = this.nextDue(end)) {
      this.t = Math.max(this.t, next.due);
      this.fire(next);
    }
    this.t = end;
  }

  /** Moves straight to the next timer and fires it; false when none is waiting. */
  runNext(): boolean {
    const next = this.nextDue(Infinity);
    if (!next) return false;
    this.t = Math.max(this.t, next.due);
    this.fire(next);
    return true;
  }

  /** Timers waiting to fire. */
  get pending(): number {
    return this.timers.size;
  }

  set(ms: number): void {
    this.t = ms;
  }

  setTimeout(fn: () => void, ms: number): Timer {
    return this.add(fn, ms, undefined);
  }

  setInterval(fn: () => void, ms: number): Timer {
    return this.add(fn, ms, Math.max(1, ms));
  }

  timeout(ms: number): AbortSignal {
    const c = new AbortController();
    this.add(() => c.abort(new DOMException('The operation was aborted due to timeout', 'TimeoutError')), ms, undefined);
    return c.signal;
  }

  private add(fn: () => void, ms: number, every: number | undefined): Timer {
    const timer: FakeTimer = { due: this.t + Math.max(0, ms), every, fn, order: this.started++ };
    this.timers.add(timer);
    return { clear: () => void this.timers.delete(timer) };
  }

  private nextDue(until: number): FakeTimer | undefined {
    let next: FakeTimer | undefined;
    for (const timer of this.timers) {
      if (timer.due > until) continue;
      if (!next || timer.due < next.due || (timer.due === next.due && timer.order < next.order)) next = timer;
    }
    return next;
  }

  private fire(timer: FakeTimer): void {
    if (timer.every === undefined) this.timers.delete(timer);
    else timer.due += timer.every;
    timer.fn();
  }
}
