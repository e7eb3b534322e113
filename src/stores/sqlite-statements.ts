import type Database from 'better-sqlite3';
import type { UserRecord } from '../core/types.js';

/**
 * Devices, approvals and requests are stored whole as JSON in `data`, like in Redis, so that optional
 * fields added to the records later round-trip without a migration; the other columns are copies of
 * the fields that queries filter or sort on.
 */
export const SCHEMA = `
CREATE TABLE IF NOT EXISTS users (
  user TEXT PRIMARY KEY,
  daemon_otp INTEGER NOT NULL,
  updated_at INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS devices (
  device_id TEXT PRIMARY KEY,
  user TEXT NOT NULL UNIQUE,
  data TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS approvals (
  user TEXT NOT NULL,
  scope TEXT NOT NULL,
  client_ip TEXT NOT NULL,
  approved_at INTEGER NOT NULL,
  expires_at INTEGER NOT NULL,
  data TEXT NOT NULL,
  PRIMARY KEY (user, scope)
);
CREATE INDEX IF NOT EXISTS approvals_expires ON approvals (expires_at);
CREATE TABLE IF NOT EXISTS requests (
  id TEXT PRIMARY KEY,
  type TEXT NOT NULL,
  user TEXT NOT NULL,
  device_id TEXT NOT NULL,
  client_ip TEXT NOT NULL,
  status TEXT NOT NULL,
  created_at INTEGER NOT NULL,
  expires_at INTEGER NOT NULL,
  data TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS requests_open ON requests (user, client_ip, type, status);
CREATE INDEX IF NOT EXISTS requests_device ON requests (device_id, status, created_at);
CREATE INDEX IF NOT EXISTS requests_expires ON requests (expires_at);
CREATE TABLE IF NOT EXISTS counters (
  key TEXT NOT NULL,
  window_ms INTEGER NOT NULL,
  bucket INTEGER NOT NULL,
  count INTEGER NOT NULL,
  expires_at INTEGER NOT NULL,
  PRIMARY KEY (key, window_ms, bucket)
);
CREATE INDEX IF NOT EXISTS counters_expires ON counters (expires_at);
CREATE TABLE IF NOT EXISTS kv (
  key TEXT PRIMARY KEY,
  value TEXT NOT NULL,
  expires_at INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS kv_expires ON kv (expires_at);
CREATE TABLE IF NOT EXISTS lists (
  seq INTEGER PRIMARY KEY AUTOINCREMENT,
  key TEXT NOT NULL,
  value TEXT NOT NULL,
  expires_at INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS lists_key ON lists (key, seq);
CREATE INDEX IF NOT EXISTS lists_expires ON lists (expires_at);
`;

export interface UserRow {
  user: string;
  daemon_otp: number;
  updated_at: number;
}
export interface DataRow {
  data: string;
}

export function toUser(r: UserRow): UserRecord {
  return { user: r.user, daemonOtp: r.daemon_otp === 1, updatedAt: r.updated_at };
}

/** Parses the `data` column of a row, or null when there is no row. */
export function record<T>(row: unknown): T | null {
  return row === undefined ? null : (JSON.parse((row as DataRow).data) as T);
}

export function records<T>(rows: unknown[]): T[] {
  return (rows as DataRow[]).map((r) => JSON.parse(r.data) as T);
}

export function prepareStatements(db: Database.Database) {
  return {
    getUser: db.prepare('SELECT * FROM users WHERE user = ?'),
    deleteUser: db.prepare('DELETE FROM users WHERE user = ?'),
    listUserNames: db.prepare('SELECT user FROM users UNION SELECT user FROM devices UNION SELECT user FROM approvals'),
    moveDevice: db.prepare('UPDATE devices SET user = ?, data = ? WHERE device_id = ?'),
    upsertUser: db.prepare(
      `INSERT INTO users (user, daemon_otp, updated_at) VALUES (?, ?, ?)
       ON CONFLICT (user) DO UPDATE SET daemon_otp = excluded.daemon_otp, updated_at = excluded.updated_at`,
    ),
    getDevice: db.prepare('SELECT data FROM devices WHERE device_id = ?'),
    getDeviceByUser: db.prepare('SELECT data FROM devices WHERE user = ?'),
    insertDevice: db.prepare('INSERT INTO devices (device_id, user, data) VALUES (?, ?, ?)'),
    updateDevice: db.prepare('UPDATE devices SET data = ? WHERE device_id = ?'),
    deleteDevice: db.prepare('DELETE FROM devices WHERE device_id = ?'),
    deletePendingOfDevice: db.prepare("DELETE FROM requests WHERE device_id = ? AND status = 'pending'"),
    upsertApproval: db.prepare(
      `INSERT INTO approvals (user, scope, client_ip, approved_at, expires_at, data) VALUES (?, ?, ?, ?, ?, ?)
       ON CONFLICT (user, scope) DO UPDATE SET client_ip = excluded.client_ip,
         approved_at = excluded.approved_at, expires_at = excluded.expires_at, data = excluded.data`,
    ),
    getApproval: db.prepare('SELECT data FROM approvals WHERE user = ? AND scope = ? AND expires_at > ?'),
    listApprovalsOfUser: db.prepare(
      'SELECT data FROM approvals WHERE user = ? AND expires_at > ? ORDER BY approved_at, user, scope',
    ),
    listApprovals: db.prepare('SELECT data FROM approvals WHERE expires_at > ? ORDER BY approved_at, user, scope'),
    deleteApprovals: db.prepare('DELETE FROM approvals WHERE user = ?'),
    deleteApprovalsByIp: db.prepare('DELETE FROM approvals WHERE user = ? AND client_ip = ?'),
    getOpenRequest: db.prepare(
      `SELECT data FROM requests WHERE user = ? AND client_ip = ? AND type = ? AND status = 'pending'
       AND expires_at > ? ORDER BY created_at, id LIMIT 1`,
    ),
    requestExists: db.prepare('SELECT 1 FROM requests WHERE id = ?'),
    insertRequest: db.prepare(
      `INSERT INTO requests (id, type, user, device_id, client_ip, status, created_at, expires_at, data)
       VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)`,
    ),
    getRequest: db.prepare('SELECT data FROM requests WHERE id = ? AND expires_at > ?'),
    listPending: db.prepare(
      `SELECT data FROM requests WHERE device_id = ? AND status = 'pending' AND expires_at > ?
       ORDER BY created_at, id`,
    ),
    updateRequest: db.prepare('UPDATE requests SET status = ?, data = ? WHERE id = ?'),
    // No RETURNING (here and in deleteValue): SQLite runs it through an ephemeral table with its own
    // page cache, an 85 KiB and a 64 KiB allocation per execution (measured, docs/benchmarks.md);
    // a SELECT beside the write, in the same transaction, reads the same row.
    hit: db.prepare(
      `INSERT INTO counters (key, window_ms, bucket, count, expires_at) VALUES (?, ?, ?, 1, ?)
       ON CONFLICT (key, window_ms, bucket) DO UPDATE SET count = count + 1`,
    ),
    count: db.prepare('SELECT count FROM counters WHERE key = ? AND window_ms = ? AND bucket = ?'),
    clear: db.prepare('DELETE FROM counters WHERE key = ? AND window_ms = ? AND bucket = ?'),
    release: db.prepare('UPDATE counters SET count = count - 1 WHERE key = ? AND window_ms = ? AND bucket = ? AND count > 0'),
    setValue: db.prepare(
      `INSERT INTO kv (key, value, expires_at) VALUES (?, ?, ?)
       ON CONFLICT (key) DO UPDATE SET value = excluded.value, expires_at = excluded.expires_at`,
    ),
    getValue: db.prepare('SELECT value FROM kv WHERE key = ? AND expires_at > ?'),
    deleteValue: db.prepare('DELETE FROM kv WHERE key = ?'),
    valueExpiry: db.prepare('SELECT expires_at FROM kv WHERE key = ?'),
    purgeValues: db.prepare('DELETE FROM kv WHERE expires_at < ?'),
    pushToList: db.prepare('INSERT INTO lists (key, value, expires_at) VALUES (?, ?, ?)'),
    trimList: db.prepare('DELETE FROM lists WHERE key = ? AND seq NOT IN (SELECT seq FROM lists WHERE key = ? ORDER BY seq DESC LIMIT ?)'),
    readList: db.prepare('SELECT value FROM lists WHERE key = ? AND expires_at > ? ORDER BY seq DESC'),
    purgeLists: db.prepare('DELETE FROM lists WHERE expires_at < ?'),
    purgeRequests: db.prepare('DELETE FROM requests WHERE expires_at < ?'),
    purgeApprovals: db.prepare('DELETE FROM approvals WHERE expires_at < ?'),
    purgeCounters: db.prepare('DELETE FROM counters WHERE expires_at < ?'),
  };
}

export type Statements = ReturnType<typeof prepareStatements>;
