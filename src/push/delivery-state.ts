import { systemClock, type Clock } from '../core/clock.js';
import type { RequestRecord } from '../core/types.js';
import type { RetryOptions } from './backoff.js';

/** The retry settings of a notifier that sends over the network. */
export interface RetrySettings {
  /** Further attempts after a failure that may pass [3]. */
  retries?: number;
  /** Wait before the first retry; doubles for each further one [1000; the webhook's 500]. */
  backoffMs?: number;
  clock?: Clock;
}

/**
 * What a sending notifier keeps between sends: its clock and retry settings, the signal that
 * close() aborts (ending waits and attempts in flight), and the requests settled here
 * (id → expiresAt), so that a retried request message does not follow its own close.
 */
export class DeliveryState {
  readonly clock: Clock;
  private readonly retries: number;
  private readonly backoffMs: number;
  private readonly closed = new AbortController();
  private readonly settled = new Map<string, number>();

  constructor(
    private readonly name: string,
    opts: RetrySettings,
    defaultBackoffMs = 1000,
  ) {
    this.clock = opts.clock ?? systemClock;
    this.retries = Math.max(0, opts.retries ?? 3);
    this.backoffMs = Math.max(0, opts.backoffMs ?? defaultBackoffMs);
  }

  get signal(): AbortSignal {
    return this.closed.signal;
  }

  close(): void {
    this.closed.abort();
  }

  /** Notes a request as settled, and forgets those past their expiry (no retry can want them). */
  settle(request: RequestRecord): void {
    const now = this.clock.now();
    for (const [id, until] of this.settled) if (until < now) this.settled.delete(id);
    this.settled.set(request.id, request.expiresAt);
  }

  isSettled(requestId: string): boolean {
    return this.settled.has(requestId);
  }

  /** withRetries' options; `label` names what failed in the final error [the notifier's name]. */
  retryOptions(onRetry: RetryOptions['onRetry'], label?: string): RetryOptions {
    return { retries: this.retries, backoffMs: this.backoffMs, signal: this.closed.signal, name: this.name, ...(label ? { label } : {}), onRetry };
  }
}
