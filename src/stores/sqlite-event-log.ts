import type Database from 'better-sqlite3';
import { eventDeviceId, type RequestEvent, type RequestRecord, type StoreEvent } from '../core/types.js';
import { resolveRead, withoutId, type LogEntry } from './event-log.js';
import { EVENT_LOG_IDLE_TTL_MS } from './keys.js';
import type { EventLogRead, LoggedEvent, LoggedRequestEvent } from '../core/ports/store.js';

/**
 * AUTOINCREMENT, not a plain rowid, so that an id is never given out twice even after the newest
 * rows are deleted: a reader's Last-Event-ID must never match a later, different event.
 */
export const EVENT_LOG_SCHEMA = `
CREATE TABLE IF NOT EXISTS events (
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  device_id TEXT NOT NULL,
  at INTEGER NOT NULL,
  data TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS events_device ON events (device_id, id);
CREATE TABLE IF NOT EXISTS event_logs (
  device_id TEXT PRIMARY KEY,
  floor INTEGER NOT NULL,
  expires_at INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS event_logs_expires ON event_logs (expires_at);
CREATE INDEX IF NOT EXISTS requests_pending_expiry ON requests (status, expires_at);
`;

interface EventRow {
  id: number;
  at: number;
  data: string;
}

function prepare(db: Database.Database) {
  return {
    getLog: db.prepare('SELECT floor, expires_at FROM event_logs WHERE device_id = ?'),
    upsertLog: db.prepare(
      `INSERT INTO event_logs (device_id, floor, expires_at) VALUES (?, ?, ?)
       ON CONFLICT (device_id) DO UPDATE SET floor = excluded.floor, expires_at = excluded.expires_at`,
    ),
    deleteEntries: db.prepare('DELETE FROM events WHERE device_id = ?'),
    oldEntries: db.prepare('SELECT MAX(id) AS id FROM events WHERE device_id = ? AND at < ?'),
    trimEntries: db.prepare('DELETE FROM events WHERE device_id = ? AND id <= ?'),
    insertEntry: db.prepare('INSERT INTO events (device_id, at, data) VALUES (?, ?, ?)'),
    entries: db.prepare('SELECT id, at, data FROM events WHERE device_id = ? ORDER BY id'),
    lastId: db.prepare("SELECT seq FROM sqlite_sequence WHERE name = 'events'"),
    expiredPending: db.prepare(
      "SELECT data FROM requests WHERE status = 'pending' AND expires_at <= ? ORDER BY expires_at, id LIMIT ?",
    ),
    markExpired: db.prepare("UPDATE requests SET status = 'expired', data = ? WHERE id = ? AND status = 'pending'"),
    purgeEntries: db.prepare('DELETE FROM events WHERE device_id IN (SELECT device_id FROM event_logs WHERE expires_at < ?)'),
    purgeLogs: db.prepare('DELETE FROM event_logs WHERE expires_at < ?'),
  };
}

/**
 * The device event logs and the expiry claim of the SQLite store. Every method is synchronous and
 * meant to run inside the store's transactions; publishing is left to the store, after the commit.
 */
export class SqliteEventLog {
  private readonly st: ReturnType<typeof prepare>;

  constructor(db: Database.Database) {
    this.st = prepare(db);
  }

  /** Mirrors the Redis script: an expired log starts over, and trimming raises the floor. */
  append(event: StoreEvent, now: number, retentionMs: number): LoggedEvent {
    const deviceId = eventDeviceId(event);
    const log = this.st.getLog.get(deviceId) as { floor: number; expires_at: number } | undefined;
    let floor = 0;
    if (log && log.expires_at > now) floor = log.floor;
    else this.st.deleteEntries.run(deviceId);
    const old = (this.st.oldEntries.get(deviceId, now - retentionMs) as { id: number | null }).id;
    if (old !== null) {
      floor = Math.max(floor, old);
      this.st.trimEntries.run(deviceId, old);
    }
    const clean = withoutId(event);
    const info = this.st.insertEntry.run(deviceId, Math.floor(now), JSON.stringify(clean));
    this.st.upsertLog.run(deviceId, floor, now + EVENT_LOG_IDLE_TTL_MS);
    return { ...clean, eventId: Number(info.lastInsertRowid) };
  }

  read(deviceId: string, afterId: number, now: number, retentionMs: number): EventLogRead {
    const log = this.st.getLog.get(deviceId) as { floor: number; expires_at: number } | undefined;
    if (!log || log.expires_at <= now) return { events: [], complete: afterId <= this.lastId() };
    const entries: LogEntry[] = (this.st.entries.all(deviceId) as EventRow[]).map((r) => ({
      event: { ...(JSON.parse(r.data) as StoreEvent), eventId: r.id } as LoggedEvent,
      at: r.at,
    }));
    return resolveRead(entries, log.floor, this.lastId(), afterId, now, retentionMs);
  }

  lastId(): number {
    const row = this.st.lastId.get() as { seq: number } | undefined;
    return row?.seq ?? 0;
  }

  /** Claims and logs; the caller's IMMEDIATE transaction makes the claim exclusive across processes. */
  expire(now: number, limit: number, retentionMs: number): LoggedRequestEvent[] {
    const out: LoggedRequestEvent[] = [];
    for (const row of this.st.expiredPending.all(now, limit) as { data: string }[]) {
      const q = JSON.parse(row.data) as RequestRecord;
      const next: RequestRecord = { ...q, status: 'expired' };
      if (this.st.markExpired.run(JSON.stringify(next), q.id).changes !== 1) continue;
      const event: RequestEvent = { type: 'request.expired', request: next };
      out.push({ ...event, eventId: this.append(event, now, retentionMs).eventId });
    }
    return out;
  }

  purge(now: number): void {
    this.st.purgeEntries.run(now);
    this.st.purgeLogs.run(now);
  }
}
