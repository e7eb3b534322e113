import type { Logger } from '../log/logger.js';
import type { AuditEntry, Store } from './ports/store.js';
import { systemScheduler, type Clock, type Scheduler } from './clock.js';

export interface AuditSettings {
  /** audit.retention: how long entries are kept in the store. */
  retentionMs: number;
  /** Entries waiting for the store at most; past it the oldest are dropped (they stay on the log). */
  maxQueued?: number;
}

/** Entries per store write. */
const BATCH = 500;
const DEFAULT_MAX_QUEUED = 10_000;
const GATHER_MS = 50;

/**
 * The audit trail in the store: every audit event of the log, kept for audit.retention and queried
 * by `mailotp audit`. Recording never waits for the store and never throws: entries are queued and
 * written in batches a moment later, so a login's decision is never held
 * up or failed by the trail. When the store write fails, those entries are dropped from the stored
 * trail (the log line, written first, is the record that stays) and one warning per failure streak
 * says how many were lost.
 */
export class AuditTrail {
  private queue: AuditEntry[] = [];
  private scheduled = false;
  private writing: Promise<void> | null = null;
  private lost = 0;
  private failing = false;
  private readonly maxQueued: number;

  constructor(
    private readonly store: Store,
    private readonly clock: Clock,
    private readonly logger: Logger,
    private readonly settings: AuditSettings,
    private readonly scheduler: Scheduler = systemScheduler,
  ) {
    this.maxQueued = settings.maxQueued ?? DEFAULT_MAX_QUEUED;
  }

  get retentionMs(): number {
    return this.settings.retentionMs;
  }

  /** Queues one event with its (already redacted) fields; `fields.user` is the canonical user. */
  record(event: string, fields: Record<string, unknown>): void {
    const { user, ...rest } = fields;
    this.queue.push({ at: this.clock.now(), event, ...(typeof user === 'string' ? { user } : {}), fields: rest });
    if (this.queue.length > this.maxQueued) {
      const over = this.queue.length - this.maxQueued;
      this.queue.splice(0, over);
      this.lost += over;
    }
    if (!this.scheduled) {
      this.scheduled = true;
      // A short wait gathers a burst of logins into one store write (one SQLite transaction on the
      // event loop, one Redis round trip); unref'd, as the CLI and the server's stop flush themselves.
      this.scheduler.setTimeout(
        () => {
          this.scheduled = false;
          void this.flush();
        },
        GATHER_MS,
        { background: true },
      );
    }
  }

  /** Writes everything queued so far (the CLI before it exits, the server before it closes the store). */
  async flush(): Promise<void> {
    while (this.writing) await this.writing;
    if (this.queue.length === 0) return;
    this.writing = this.drain();
    try {
      await this.writing;
    } finally {
      this.writing = null;
    }
  }

  /** The stored entries of the last `sinceMs` (of one canonical user when given), oldest first. */
  query(q: { user?: string; sinceMs: number; limit: number }): Promise<AuditEntry[]> {
    const now = this.clock.now();
    return this.store.readAudit({ ...(q.user !== undefined ? { user: q.user } : {}), since: now - q.sinceMs, limit: q.limit }, now, this.settings.retentionMs);
  }

  private async drain(): Promise<void> {
    while (this.queue.length > 0) {
      const batch = this.queue.splice(0, BATCH);
      try {
        await this.store.appendAudit(batch, this.clock.now(), this.settings.retentionMs);
        if (this.failing || this.lost > 0) {
          this.logger.warn({ component: 'audit', lost: this.lost }, 'audit trail written to the store again');
          this.failing = false;
          this.lost = 0;
        }
      } catch (err) {
        this.lost += batch.length;
        // One warning per streak: a store outage during a login storm must not flood the log.
        if (!this.failing) {
          this.failing = true;
          this.logger.warn({ component: 'audit', err: err instanceof Error ? err.message : String(err) }, 'could not write the audit trail to the store; entries stay on the log only');
        }
      }
    }
  }
}
