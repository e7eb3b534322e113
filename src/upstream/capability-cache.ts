import { systemClock, type Clock } from '../core/clock.js';
import type { Logger } from '../log/logger.js';

export interface CapabilityCacheOptions<T> {
  /** How long a list read from the upstream is served before a background refresh. */
  ttlMs: number;
  /** After a failed read, how soon get() tries the upstream again (never later than ttlMs). */
  retryMs: number;
  /** What get() answers while the upstream has never been reachable. */
  fallback: readonly T[];
  logger: Logger;
  /** The debug line after a successful read: its fields and message. */
  readLog: (list: readonly T[]) => [fields: Record<string, unknown>, message: string];
  /** The warning after a failed read. */
  failedMessage: string;
  /** What ttlMs and retryMs are measured on [the system's]. */
  clock?: Clock;
}

/**
 * An upstream's capability list (IMAP CAPABILITY, POP3 CAPA, SMTP EHLO): read at start-up, served
 * for a TTL, then refreshed in the background while the old list is still served. A failed read
 * keeps the previous list (or the fallback) and retries soon.
 */
export class CapabilityCache<T> {
  private cache: { list: T[]; expiresAt: number } | null = null;
  private refreshing: Promise<void> | null = null;
  private stopped = false;
  private readonly clock: Clock;

  constructor(
    private readonly read: () => Promise<T[]>,
    private readonly opts: CapabilityCacheOptions<T>,
  ) {
    this.clock = opts.clock ?? systemClock;
  }

  /** Reads the list once; an unreachable upstream only logs a warning. */
  async start(): Promise<void> {
    await this.refresh();
  }

  /** No more refreshes (shutdown): get() serves what it has. */
  stop(): void {
    this.stopped = true;
  }

  /** A copy of the current list; waits for the first read, refreshes a stale one in the background. */
  async get(): Promise<T[]> {
    if (!this.stopped) {
      if (!this.cache) await this.refresh();
      else if (this.clock.now() >= this.cache.expiresAt) void this.refresh();
    }
    return [...(this.cache?.list ?? this.opts.fallback)];
  }

  /** Takes a list read elsewhere (e.g. on a login connection) as fresh. */
  set(list: T[]): void {
    this.cache = { list, expiresAt: this.clock.now() + this.opts.ttlMs };
  }

  private refresh(): Promise<void> {
    this.refreshing ??= this.read()
      .then((list) => {
        this.set(list);
        const [fields, message] = this.opts.readLog(list);
        this.opts.logger.debug(fields, message);
      })
      .catch((err: unknown) => {
        this.opts.logger.warn({ err: (err as Error).message }, this.opts.failedMessage);
        this.cache = {
          list: this.cache?.list ?? [...this.opts.fallback],
          expiresAt: this.clock.now() + Math.min(this.opts.ttlMs, this.opts.retryMs),
        };
      })
      .finally(() => {
        this.refreshing = null;
      });
    return this.refreshing;
  }
}
