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

/** A timer's options: a `background` one never keeps the process alive on its own. */
export interface TimerOptions {
  background?: boolean;
}

/**
 * The one source of timers: holds, sweeps and idle timers start theirs here, so that a test can
 * drive them with a FakeClock instead of sleeping.
 */
export interface Scheduler {
  /** Runs fn once, after ms. */
  setTimeout(fn: () => void, ms: number, opts?: TimerOptions): Timer;
  /** Runs fn every ms. */
  setInterval(fn: () => void, ms: number, opts?: TimerOptions): Timer;
}

export const systemScheduler: Scheduler = {
  setTimeout(fn, ms, opts) {
    const t = setTimeout(fn, ms);
    if (opts?.background) t.unref();
    return { clear: () => clearTimeout(t) };
  },
  setInterval(fn, ms, opts) {
    const t = setInterval(fn, ms);
    if (opts?.background) t.unref();
    return { clear: () => clearInterval(t) };
  },
};

/**
 * A signal that aborts when its parent does (with the parent's reason) or when abort() is called,
 * until clear() unlinks it from the parent. Call clear() when the work it guards is over, or the
 * parent keeps a listener per call for as long as it lives.
 */
export interface LinkedAbort {
  readonly signal: AbortSignal;
  abort(reason?: unknown): void;
  /** Removes the link to the parent; safe to call more than once. */
  clear(): void;
}

/**
 * Not AbortSignal.any([parent, ...]): Node 20 holds the signals it joins only weakly, so a signal
 * nobody else references (AbortSignal.timeout's, typically) can be collected by the GC and then
 * never fires; and every call leaves weak references and a finalization cell for the collector.
 * Here the parent's listener and the returned object hold the controller strongly.
 */
export function linkedAbort(parent?: AbortSignal): LinkedAbort {
  const controller = new AbortController();
  const forward = () => controller.abort(parent?.reason);
  if (parent?.aborted) forward();
  else parent?.addEventListener('abort', forward, { once: true });
  return {
    signal: controller.signal,
    abort: (reason?: unknown) => controller.abort(reason),
    clear: () => parent?.removeEventListener('abort', forward),
  };
}

/** A LinkedAbort that also aborts by itself, with a "TimeoutError" DOMException, after its time. */
export interface Deadline extends LinkedAbort {
  /** True once the time ran out (and not when it was aborted otherwise first). */
  readonly expired: boolean;
  /** Stops the timer and unlinks the parent; safe to call more than once. */
  clear(): void;
}

/**
 * A deadline of ms on `scheduler`'s timers, joined with `parent` (a client leaving, a notifier
 * closing). Holds, upstream connects and webhook POSTs end by it; clear() when they are over.
 */
export function deadline(scheduler: Scheduler, ms: number, parent?: AbortSignal, opts?: TimerOptions): Deadline {
  const link = linkedAbort(parent);
  let expired = false;
  const timer = link.signal.aborted
    ? undefined
    : scheduler.setTimeout(
        () => {
          if (link.signal.aborted) return;
          expired = true;
          link.abort(new DOMException(`The operation timed out after ${ms} ms`, 'TimeoutError'));
        },
        ms,
        opts,
      );
  return {
    signal: link.signal,
    get expired() {
      return expired;
    },
    abort: link.abort,
    clear: () => {
      timer?.clear();
      link.clear();
    },
  };
}

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
