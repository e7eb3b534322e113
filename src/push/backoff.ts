import { deadline, systemScheduler } from '../core/clock.js';

/** Waits ms, or rejects with Error(closedMessage) at once when the signal aborts (a notifier closing). */
export function abortableSleep(ms: number, signal: AbortSignal, closedMessage: string): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal.aborted) {
      reject(new Error(closedMessage));
      return;
    }
    const wait = deadline(systemScheduler, ms, signal);
    wait.signal.addEventListener(
      'abort',
      () => {
        wait.clear();
        if (wait.expired) resolve();
        else reject(new Error(closedMessage));
      },
      { once: true },
    );
  });
}

/** A failure worth another attempt: the receiver is down, overloaded or slow. */
export class RetryableError extends Error {}

export interface RetryOptions {
  /** Further attempts after the first. */
  retries: number;
  /** Wait before the first retry; doubles for each further one. */
  backoffMs: number;
  /** Aborted when the notifier closes: no further attempt, no further wait. */
  signal: AbortSignal;
  /** The notifier's name in errors ("webhook", "webpush"). */
  name: string;
  /** What failed, in the final error ("fcm request") [name]. */
  label?: string;
  /** Told about each failed attempt that is followed by another (for a debug line). */
  onRetry(attempt: number, waitMs: number, err: string): void;
}

/**
 * Runs attempt(n) until it resolves, throws something other than RetryableError, or the attempts
 * are used up; then throws `${name} delivery failed after N attempt(s): <last error>`.
 */
export async function withRetries<T>(opts: RetryOptions, attempt: (n: number, lastError: string) => Promise<T>): Promise<T> {
  const attempts = Math.max(0, opts.retries) + 1;
  const closed = `${opts.name} notifier closed`;
  let last = '';
  for (let n = 1; n <= attempts; n++) {
    if (opts.signal.aborted) throw new Error(closed);
    try {
      return await attempt(n, last);
    } catch (err) {
      if (!(err instanceof RetryableError)) throw err;
      last = err.message;
    }
    if (n < attempts) {
      const wait = opts.backoffMs * 2 ** (n - 1);
      opts.onRetry(n, wait, last);
      await abortableSleep(wait, opts.signal, closed);
    }
  }
  throw new Error(`${opts.label ?? opts.name} delivery failed after ${attempts} attempt(s): ${last}`);
}
