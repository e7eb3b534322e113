import type Database from 'better-sqlite3';
import { auditBody, auditCutoff, parseAuditBody } from './audit-log.js';
import { SQLITE_PURGE_INTERVAL_MS } from './keys.js';
import type { AuditEntry, AuditQuery } from '../core/ports/store.js';

export const AUDIT_LOG_SCHEMA = `
CREATE TABLE IF NOT EXISTS audit (
  id INTEGER PRIMARY KEY,
  at INTEGER NOT NULL,
  user TEXT,
  data TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS audit_at ON audit (at);
CREATE INDEX IF NOT EXISTS audit_user ON audit (user, at);
`;

function prepare(db: Database.Database) {
  return {
    insert: db.prepare('INSERT INTO audit (at, user, data) VALUES (?, ?, ?)'),
    trim: db.prepare('DELETE FROM audit WHERE at < ?'),
    // The newest `limit` (by time, then insertion), turned back into time order by the caller.
    all: db.prepare('SELECT data FROM audit WHERE at >= ? ORDER BY at DESC, id DESC LIMIT ?'),
    ofUser: db.prepare('SELECT data FROM audit WHERE user = ? AND at >= ? ORDER BY at DESC, id DESC LIMIT ?'),
  };
}

/** The audit trail of the SQLite store; synchronous, run inside the store's transactions. */
export class SqliteAuditLog {
  private readonly st: ReturnType<typeof prepare>;
  private lastTrim = Number.NEGATIVE_INFINITY;

  constructor(db: Database.Database) {
    this.st = prepare(db);
  }

  /** Old entries are trimmed at most once per purge interval (or when the clock moved back): the
   * audit trail is written every 50 ms under load, and read() ignores entries past the retention. */
  append(entries: readonly AuditEntry[], now: number, retentionMs: number): void {
    for (const e of entries) this.st.insert.run(Math.floor(e.at), e.user ?? null, auditBody(e));
    if (now - this.lastTrim < SQLITE_PURGE_INTERVAL_MS && now >= this.lastTrim) return;
    this.lastTrim = now;
    this.st.trim.run(auditCutoff(now, retentionMs));
  }

  read(q: AuditQuery, now: number, retentionMs: number): AuditEntry[] {
    const from = Math.max(q.since, auditCutoff(now, retentionMs));
    const rows = (q.user !== undefined ? this.st.ofUser.all(q.user, from, q.limit) : this.st.all.all(from, q.limit)) as { data: string }[];
    const out: AuditEntry[] = [];
    for (const r of rows) {
      const e = parseAuditBody(r.data);
      if (e) out.push(e);
    }
    return out.reverse();
  }
}
