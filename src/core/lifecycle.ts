import type { Logger } from '../log/logger.js';

/**
 * The closers of the parts a start-up opened, in the order it opened them. A start that fails
 * half-way and a normal stop run the same closers, last opened first, so neither path can forget
 * one. A closer that fails is logged and the others still run: a store left open because a
 * notifier failed to flush would lose more than the notifier did.
 */
export class Lifecycle {
  private readonly closers: { part: string; close: () => unknown }[] = [];
  private closing: Promise<void> | null = null;

  constructor(private readonly logger: Logger) {}

  /** Registers the closer of a part just opened (before it is started, when a failed start leaves something to close). */
  add(part: string, close: () => unknown): void {
    this.closers.push({ part, close });
  }

  /** Runs every closer once, in reverse order; a second call waits for the first. */
  close(): Promise<void> {
    this.closing ??= this.closeAll();
    return this.closing;
  }

  private async closeAll(): Promise<void> {
    for (let c = this.closers.pop(); c; c = this.closers.pop()) {
      const started = Date.now();
      try {
        await c.close();
        // Where a slow shutdown spends its time, for an admin reading the log at debug.
        this.logger.debug({ part: c.part, ms: Date.now() - started }, `closed ${c.part}`);
      } catch (err) {
        this.logger.error({ part: c.part, err: err instanceof Error ? err.message : String(err) }, `closing ${c.part} failed`);
      }
    }
  }
}
