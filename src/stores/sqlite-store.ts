import { mkdirSync } from 'node:fs';
import { dirname } from 'node:path';
import Database from 'better-sqlite3';
import { MailotpError, isMailotpError } from '../core/errors.js';
import type { ApprovalRecord, DeviceRecord, RequestRecord, StoreEvent, UserRecord, WebPushSubscription } from '../core/types.js';
import { SCHEMA, prepareStatements, record, records, toUser, type Statements, type UserRow } from './sqlite-statements.js';
import {
  APPROVAL_GRACE_MS,
  COUNTER_GRACE_MS,
  REQUEST_GRACE_MS,
  SQLITE_BUSY_TIMEOUT_MS,
  SQLITE_PURGE_INTERVAL_MS,
  SQLITE_SCHEMA_VERSION,
  VALUE_GRACE_MS,
  checkListArgs,
  checkTtl,
  windowBucket,
} from './keys.js';
import { AUDIT_LOG_SCHEMA, SqliteAuditLog } from './sqlite-audit-log.js';
import { EVENT_LOG_SCHEMA, SqliteEventLog } from './sqlite-event-log.js';
import type { AuditEntry, AuditQuery, CreateRequestResult, DecideResult, EventLogRead, LoggedEvent, RequestCap, Store, Unsubscribe } from '../core/ports/store.js';

export interface SqliteStoreOptions {
  /** A file path, or ':memory:'. */
  path: string;
  /** Told about subscriber handler errors, which never reach the publisher. */
  onError?: (err: Error) => void;
}

function unavailable(err: unknown): MailotpError {
  if (isMailotpError(err)) return err;
  const msg = err instanceof Error ? err.message : String(err);
  return new MailotpError('MAILOTP_ERR_STORE_UNAVAILABLE', `sqlite store: ${msg}`, { cause: err });
}

function checkWindow(windowMs: number): void {
  if (!Number.isFinite(windowMs) || windowMs <= 0) {
    throw new MailotpError('MAILOTP_ERR_BAD_INPUT', `counter window must be positive, got ${windowMs}`);
  }
}

/**
 * Single-node store. The driver is synchronous, so every method body runs to completion without
 * interleaving inside this process; write transactions are IMMEDIATE so that a second process on
 * the same file waits (busy_timeout) instead of failing on a lock upgrade.
 */
export class SqliteStore implements Store {
  private readonly db: Database.Database;
  private readonly handlers = new Set<(event: StoreEvent) => void>();
  private readonly onError: ((err: Error) => void) | undefined;
  private lastPurge = Number.NEGATIVE_INFINITY;
  private closed = false;

  private readonly st: Statements;
  private readonly events: SqliteEventLog;
  private readonly audit: SqliteAuditLog;

  constructor(options: SqliteStoreOptions) {
    this.onError = options.onError;
    try {
      if (options.path !== ':memory:') mkdirSync(dirname(options.path), { recursive: true });
      this.db = new Database(options.path);
    } catch (err) {
      throw unavailable(err);
    }
    try {
      this.db.pragma('journal_mode = WAL');
      this.db.pragma('synchronous = NORMAL');
      this.db.pragma(`busy_timeout = ${SQLITE_BUSY_TIMEOUT_MS}`);
      this.migrate();
      this.st = prepareStatements(this.db);
      this.events = new SqliteEventLog(this.db);
      this.audit = new SqliteAuditLog(this.db);
    } catch (err) {
      this.db.close();
      throw unavailable(err);
    }
  }

  private migrate(): void {
    const version = this.db.pragma('user_version', { simple: true }) as number;
    if (version > SQLITE_SCHEMA_VERSION) {
      throw new MailotpError(
        'MAILOTP_ERR_CONFIG',
        `database schema version ${version} is newer than this mailotp supports (${SQLITE_SCHEMA_VERSION})`,
      );
    }
    this.db
      .transaction(() => {
        this.db.exec(SCHEMA);
        this.db.exec(EVENT_LOG_SCHEMA);
        this.db.exec(AUDIT_LOG_SCHEMA);
        this.db.pragma(`user_version = ${SQLITE_SCHEMA_VERSION}`);
      })
      .immediate();
  }

  /** Runs fn in a write transaction; any driver error (closed, busy, disk) fails closed. */
  private write<T>(fn: () => T): T {
    try {
      return this.db.transaction(fn).immediate();
    } catch (err) {
      throw unavailable(err);
    }
  }

  private read<T>(fn: () => T): T {
    try {
      return fn();
    } catch (err) {
      throw unavailable(err);
    }
  }

  /** Deletes long-expired rows at most once per interval of the caller's clock (or when it moved back). */
  private maybePurge(now: number): void {
    if (now - this.lastPurge < SQLITE_PURGE_INTERVAL_MS && now >= this.lastPurge) return;
    this.lastPurge = now;
    this.st.purgeRequests.run(now - REQUEST_GRACE_MS);
    this.st.purgeApprovals.run(now - APPROVAL_GRACE_MS);
    this.st.purgeCounters.run(now - COUNTER_GRACE_MS);
    this.st.purgeValues.run(now - VALUE_GRACE_MS);
    this.st.purgeLists.run(now - VALUE_GRACE_MS);
    this.events.purge(now);
  }

  async getUser(user: string): Promise<UserRecord | null> {
    return this.read(() => {
      const row = this.st.getUser.get(user) as UserRow | undefined;
      return row ? toUser(row) : null;
    });
  }

  async setDaemonOtp(user: string, on: boolean, now: number): Promise<void> {
    this.write(() => {
      this.st.upsertUser.run(user, on ? 1 : 0, now);
    });
  }

  async deleteUser(user: string): Promise<void> {
    this.write(() => {
      this.st.deleteUser.run(user);
    });
  }

  async listUserNames(): Promise<string[]> {
    return this.read(() => (this.st.listUserNames.all() as { user: string }[]).map((r) => r.user));
  }

  async moveDevice(from: string, to: string): Promise<'moved' | 'missing' | 'exists'> {
    return this.write(() => {
      const device = record<DeviceRecord>(this.st.getDeviceByUser.get(from));
      if (!device) return 'missing';
      if (this.st.getDeviceByUser.get(to)) return 'exists';
      this.st.moveDevice.run(to, JSON.stringify({ ...device, user: to }), device.deviceId);
      return 'moved';
    });
  }

  async getDevice(deviceId: string): Promise<DeviceRecord | null> {
    return this.read(() => record<DeviceRecord>(this.st.getDevice.get(deviceId)));
  }

  async getDeviceByUser(user: string): Promise<DeviceRecord | null> {
    return this.read(() => record<DeviceRecord>(this.st.getDeviceByUser.get(user)));
  }

  async putDevice(device: DeviceRecord, replace: boolean): Promise<'created' | 'exists'> {
    return this.write(() => {
      const old = record<DeviceRecord>(this.st.getDeviceByUser.get(device.user));
      if (old && !replace) return 'exists';
      const clash = record<DeviceRecord>(this.st.getDevice.get(device.deviceId));
      if (clash && clash.user !== device.user) {
        throw new MailotpError('MAILOTP_ERR_BAD_INPUT', 'device id already belongs to another user');
      }
      if (old) this.dropDevice(old.deviceId);
      this.st.insertDevice.run(device.deviceId, device.user, JSON.stringify(device));
      return 'created';
    });
  }

  private dropDevice(deviceId: string): void {
    this.st.deleteDevice.run(deviceId);
    this.st.deletePendingOfDevice.run(deviceId);
  }

  async removeDevice(user: string): Promise<DeviceRecord | null> {
    return this.write(() => {
      const device = record<DeviceRecord>(this.st.getDeviceByUser.get(user));
      if (device) this.dropDevice(device.deviceId);
      return device;
    });
  }

  /** Unknown device ids are ignored: the device may have been replaced meanwhile. */
  async setPushToken(deviceId: string, token: string | null, platform: 'android' | 'ios' | null): Promise<void> {
    this.write(() => {
      const device = record<DeviceRecord>(this.st.getDevice.get(deviceId));
      if (!device) return;
      delete device.pushToken;
      delete device.pushPlatform;
      if (token !== null) {
        device.pushToken = token;
        if (platform !== null) device.pushPlatform = platform;
      }
      this.st.updateDevice.run(JSON.stringify(device), deviceId);
    });
  }

  async touchDevice(deviceId: string, at: number): Promise<void> {
    this.write(() => {
      const device = record<DeviceRecord>(this.st.getDevice.get(deviceId));
      if (!device) return;
      this.st.updateDevice.run(JSON.stringify({ ...device, lastUsedAt: at }), deviceId);
    });
  }

  async setWebPush(deviceId: string, subscription: WebPushSubscription | null): Promise<void> {
    this.write(() => {
      const device = record<DeviceRecord>(this.st.getDevice.get(deviceId));
      if (!device) return;
      delete device.webPush;
      if (subscription) device.webPush = subscription;
      this.st.updateDevice.run(JSON.stringify(device), deviceId);
    });
  }

  async putApproval(approval: ApprovalRecord, now: number): Promise<void> {
    this.write(() => {
      this.maybePurge(now);
      const a = approval;
      this.st.upsertApproval.run(a.user, a.scope, a.clientIp, a.approvedAt, a.expiresAt, JSON.stringify(a));
    });
  }

  async getApproval(user: string, scope: string, now: number): Promise<ApprovalRecord | null> {
    return this.read(() => record<ApprovalRecord>(this.st.getApproval.get(user, scope, now)));
  }

  async listApprovals(user: string | null, now: number): Promise<ApprovalRecord[]> {
    return this.read(() =>
      records<ApprovalRecord>(
        user === null ? this.st.listApprovals.all(now) : this.st.listApprovalsOfUser.all(user, now),
      ),
    );
  }

  /** Matches clientIp (where the approved login came from), not scope, so '*'-scoped approvals are found too. */
  async deleteApprovals(user: string, clientIp?: string): Promise<number> {
    return this.write(() => {
      const r =
        clientIp === undefined ? this.st.deleteApprovals.run(user) : this.st.deleteApprovalsByIp.run(user, clientIp);
      return r.changes;
    });
  }

  async createRequest(request: RequestRecord, now: number, cap?: RequestCap): Promise<CreateRequestResult> {
    if (cap) checkWindow(cap.windowMs);
    return this.write((): CreateRequestResult => {
      this.maybePurge(now);
      const r = request;
      const open = record<RequestRecord>(this.st.getOpenRequest.get(r.user, r.clientIp, r.type, now));
      if (open) return { created: false, request: open };
      if (this.st.requestExists.get(r.id)) {
        throw new MailotpError('MAILOTP_ERR_BAD_INPUT', 'request id already used');
      }
      const bucket = cap ? windowBucket(now, cap.windowMs) : 0;
      if (cap) {
        const row = this.st.count.get(cap.key, cap.windowMs, bucket) as { count: number } | undefined;
        if ((row?.count ?? 0) >= cap.max) return { created: false, request: null };
      }
      const data = JSON.stringify(r);
      this.st.insertRequest.run(r.id, r.type, r.user, r.deviceId, r.clientIp, r.status, r.createdAt, r.expiresAt, data);
      if (cap) this.st.hit.get(cap.key, cap.windowMs, bucket, (bucket + 1) * cap.windowMs);
      return { created: true, request: JSON.parse(data) as RequestRecord };
    });
  }

  async getRequest(id: string, now: number): Promise<RequestRecord | null> {
    return this.read(() => record<RequestRecord>(this.st.getRequest.get(id, now)));
  }

  async listPendingRequests(deviceId: string, now: number): Promise<RequestRecord[]> {
    return this.read(() => records<RequestRecord>(this.st.listPending.all(deviceId, now)));
  }

  async decideRequest(id: string, status: 'approved' | 'denied', now: number): Promise<DecideResult> {
    return this.write((): DecideResult => {
      const q = record<RequestRecord>(this.st.getRequest.get(id, now));
      if (!q) return { status: 'not-found' };
      if (q.status !== 'pending') return { status: 'already-decided', request: q };
      const next: RequestRecord = { ...q, status, decidedAt: now };
      this.st.updateRequest.run(status, JSON.stringify(next), id);
      return { status: 'ok', request: next };
    });
  }

  async expireRequests(now: number, limit: number, retentionMs: number): Promise<LoggedEvent[]> {
    const events = this.write(() => {
      this.maybePurge(now);
      return this.events.expire(now, limit, retentionMs);
    });
    for (const e of events) this.deliver(e);
    return events;
  }

  async appendEvent(event: StoreEvent, now: number, retentionMs: number): Promise<LoggedEvent> {
    if (this.closed) throw unavailable(new Error('store is closed'));
    const logged = this.write(() => this.events.append(event, now, retentionMs));
    this.deliver(logged);
    return logged;
  }

  async readEvents(deviceId: string, afterId: number, now: number, retentionMs: number): Promise<EventLogRead> {
    return this.read(() => this.events.read(deviceId, afterId, now, retentionMs));
  }

  async lastEventId(): Promise<number> {
    return this.read(() => this.events.lastId());
  }

  async appendAudit(entries: readonly AuditEntry[], now: number, retentionMs: number): Promise<void> {
    this.write(() => this.audit.append(entries, now, retentionMs));
  }

  async readAudit(query: AuditQuery, now: number, retentionMs: number): Promise<AuditEntry[]> {
    return this.read(() => this.audit.read(query, now, retentionMs));
  }

  async hit(key: string, windowMs: number, now: number): Promise<number> {
    checkWindow(windowMs);
    return this.write(() => {
      this.maybePurge(now);
      const bucket = windowBucket(now, windowMs);
      const row = this.st.hit.get(key, windowMs, bucket, (bucket + 1) * windowMs) as { count: number };
      return row.count;
    });
  }

  async count(key: string, windowMs: number, now: number): Promise<number> {
    checkWindow(windowMs);
    return this.read(() => {
      const row = this.st.count.get(key, windowMs, windowBucket(now, windowMs)) as { count: number } | undefined;
      return row?.count ?? 0;
    });
  }

  async clear(key: string, windowMs: number, now: number): Promise<void> {
    checkWindow(windowMs);
    this.write(() => {
      this.st.clear.run(key, windowMs, windowBucket(now, windowMs));
    });
  }

  async release(key: string, windowMs: number, now: number): Promise<void> {
    checkWindow(windowMs);
    this.write(() => {
      this.st.release.run(key, windowMs, windowBucket(now, windowMs));
    });
  }

  async setValue(key: string, value: string, ttlMs: number, now: number): Promise<void> {
    checkTtl(ttlMs);
    this.write(() => {
      this.maybePurge(now);
      this.st.setValue.run(key, value, now + ttlMs);
    });
  }

  async setValueIfAbsent(key: string, value: string, ttlMs: number, now: number): Promise<boolean> {
    checkTtl(ttlMs);
    return this.write(() => {
      this.maybePurge(now);
      if (this.st.getValue.get(key, now)) return false;
      this.st.setValue.run(key, value, now + ttlMs);
      return true;
    });
  }

  async getValue(key: string, now: number): Promise<string | null> {
    return this.read(() => (this.st.getValue.get(key, now) as { value: string } | undefined)?.value ?? null);
  }

  async takeValue(key: string, now: number): Promise<string | null> {
    return this.write(() => {
      const row = this.st.getValue.get(key, now) as { value: string } | undefined;
      this.st.deleteValue.run(key);
      return row?.value ?? null;
    });
  }

  async deleteValue(key: string, now: number): Promise<boolean> {
    return this.write(() => {
      const row = this.st.deleteValue.get(key) as { expires_at: number } | undefined;
      return row !== undefined && row.expires_at > now;
    });
  }
  async pushToList(key: string, value: string, maxItems: number, ttlMs: number, now: number): Promise<void> {
    checkListArgs(maxItems, ttlMs);
    this.write(() => {
      this.st.pushToList.run(key, value, now + ttlMs);
      this.st.trimList.run(key, key, maxItems);
    });
  }

  async readList(key: string, now: number): Promise<string[]> {
    return this.read(() => (this.st.readList.all(key, now) as { value: string }[]).map((r) => r.value));
  }


  /** In-process only: one SQLite file serves one mailotp process. */
  async publish(event: StoreEvent): Promise<void> {
    if (this.closed) throw unavailable(new Error('store is closed'));
    this.deliver(event);
  }

  private deliver(event: StoreEvent): void {
    // A copy, as if it had crossed the wire, so that neither side sees the other's later mutations.
    const copy = structuredClone(event);
    for (const handler of this.handlers) {
      // Delivered later, never inside the publisher's call stack.
      setImmediate(() => {
        if (!this.handlers.has(handler)) return;
        try {
          handler(copy);
        } catch (err) {
          this.onError?.(err instanceof Error ? err : new Error(String(err)));
        }
      });
    }
  }

  subscribe(handler: (event: StoreEvent) => void): Unsubscribe {
    // Wrapped so that the same function subscribed twice gets two independent subscriptions.
    const h = (e: StoreEvent): void => handler(e);
    this.handlers.add(h);
    return () => {
      this.handlers.delete(h);
    };
  }

  async ping(): Promise<void> {
    this.read(() => this.db.prepare('SELECT 1').get());
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.handlers.clear();
    this.db.close();
  }
}
