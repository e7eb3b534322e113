import { mkdirSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, resolve } from 'node:path';
import { Worker } from 'node:worker_threads';
import Database from 'better-sqlite3';
import { MailotpError, isMailotpError } from '../core/errors.js';
import type { ApprovalRecord, DeviceRecord, PublishedEvent, RequestRecord, StoreEvent, UserRecord, WebPushSubscription } from '../core/types.js';
import { SCHEMA, prepareStatements, record, records, toUser, type Statements, type UserRow } from './sqlite-statements.js';
import {
  APPROVAL_GRACE_MS,
  COUNTER_GRACE_MS,
  REQUEST_GRACE_MS,
  SQLITE_BUSY_TIMEOUT_MS,
  SQLITE_CHECKPOINT_INTERVAL_MS,
  SQLITE_PURGE_INTERVAL_MS,
  SQLITE_SCHEMA_VERSION,
  VALUE_GRACE_MS,
  checkListArgs,
  checkTtl,
  windowBucket,
} from './keys.js';
import { AUDIT_LOG_SCHEMA, SqliteAuditLog } from './sqlite-audit-log.js';
import { EVENT_LOG_SCHEMA, SqliteEventLog } from './sqlite-event-log.js';
import type { AuditEntry, AuditQuery, CreateRequestResult, DecideResult, EventLogRead, LoggedEvent, LoggedRequestEvent, RequestCap, Store, Unsubscribe } from '../core/ports/store.js';

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

/**
 * The checkpointer: a worker thread with its own connection to the file that runs a PASSIVE
 * checkpoint (it never waits for the writer or readers) every interval, so that copying the WAL back
 * and syncing the file happen beside the event loop instead of inside the COMMIT of whichever write
 * crossed SQLite's 1,000-page mark: that COMMIT sat on a login's path and took up to 442 ms under load.
 */
const CHECKPOINTER = `
const { parentPort, workerData } = require('node:worker_threads');
const Database = require(workerData.driver);
const db = new Database(workerData.path);
db.pragma('busy_timeout = ' + workerData.busyTimeoutMs);
const timer = setInterval(() => {
  try { db.pragma('wal_checkpoint(PASSIVE)'); } catch { /* the next tick tries again */ }
}, workerData.intervalMs);
parentPort.once('message', () => {
  clearInterval(timer);
  try { db.close(); } finally { parentPort.close(); }
});
`;

function startCheckpointer(path: string): Worker {
  const worker = new Worker(CHECKPOINTER, {
    eval: true,
    workerData: {
      driver: createRequire(import.meta.url).resolve('better-sqlite3'),
      path: resolve(path),
      busyTimeoutMs: SQLITE_BUSY_TIMEOUT_MS,
      intervalMs: SQLITE_CHECKPOINT_INTERVAL_MS,
    },
  });
  worker.unref();
  return worker;
}

/** What one queued write came to, for its caller. */
type Outcome = { ok: true; value: unknown } | { ok: false; err: unknown };

/** A write waiting for the next group commit. */
interface QueuedWrite {
  fn: () => unknown;
  durable: boolean;
  resolve: (value: unknown) => void;
  reject: (err: unknown) => void;
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
 *
 * Writes are group-committed: the writes asked for in one callback (a login's two counter hits)
 * run in one transaction (one that fails rolls back alone, see runBatch), and each caller's promise
 * settles after the COMMIT that holds its write. A read first commits the writes queued before it,
 * so every caller still sees its own writes in program order.
 *
 * Durability: WAL with synchronous=NORMAL, so a COMMIT is safe from a crash of the process (the
 * WAL is in the OS's cache) but the last transactions before a power loss or a kernel crash may be
 * lost (the file stays consistent). Counters and the log of recent logins may go back a little;
 * the writes that a user's tap or an admin made (approvals, decisions, devices) are committed with
 * synchronous=FULL, i.e. synced to disk before the caller (and so the phone) is told they are done.
 */
export class SqliteStore implements Store {
  private readonly db: Database.Database;
  private readonly handlers = new Set<(event: PublishedEvent) => void>();
  private readonly onError: ((err: Error) => void) | undefined;
  private lastPurge = Number.NEGATIVE_INFINITY;
  private closed = false;
  private queued: QueuedWrite[] = [];
  private checkpointer: { worker: Worker; exited: Promise<unknown> } | undefined;
  private checkpointerStart: NodeJS.Timeout | undefined;

  private readonly st: Statements;
  private readonly events: SqliteEventLog;
  private readonly audit: SqliteAuditLog;
  /**
   * The group commit's transactions, made once: each db.transaction() call builds four wrapper
   * functions and their properties (5.6 KiB of garbage per login when made per batch). `nested`
   * runs inside one of the others, so it is a savepoint.
   */
  private readonly commitAll: Database.Transaction<(batch: QueuedWrite[]) => Outcome[]>;
  private readonly commitEach: Database.Transaction<(batch: QueuedWrite[]) => Outcome[]>;
  private readonly nested: Database.Transaction<(fn: () => unknown) => unknown>;

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
      if (options.path !== ':memory:') {
        // No checkpoint inside a COMMIT: the checkpointer thread does them. It starts after one
        // interval, so that a CLI command that is done by then never pays for a thread (closing
        // the last connection checkpoints anyway).
        this.db.pragma('wal_autocheckpoint = 0');
        const path = options.path;
        this.checkpointerStart = setTimeout(() => {
          const worker = startCheckpointer(path);
          // A checkpointer that dies only lets the WAL grow; the store itself still works.
          worker.on('error', (err) => this.onError?.(err));
          this.checkpointer = { worker, exited: new Promise((r) => worker.once('exit', r)) };
        }, SQLITE_CHECKPOINT_INTERVAL_MS);
        this.checkpointerStart.unref();
      }
      this.st = prepareStatements(this.db);
      this.commitAll = this.db.transaction((batch: QueuedWrite[]) => batch.map((w): Outcome => ({ ok: true, value: w.fn() })));
      this.nested = this.db.transaction((fn: () => unknown) => fn());
      this.commitEach = this.db.transaction((batch: QueuedWrite[]) =>
        batch.map((w): Outcome => {
          try {
            return { ok: true, value: this.nested(w.fn) };
          } catch (err) {
            return { ok: false, err };
          }
        }),
      );
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

  /**
   * Runs fn in the next group commit; any driver error (closed, busy, disk) fails closed. `durable`:
   * the COMMIT is synced to disk before the promise settles (synchronous=FULL for that transaction).
   */
  private write<T>(fn: () => T, durable = false): Promise<T> {
    return new Promise<T>((resolve, reject) => {
      this.queued.push({ fn, durable, resolve: resolve as (value: unknown) => void, reject });
      // At the end of the current callback: the writes it asks for (a login's two counters) share a
      // COMMIT. Not later (setImmediate batched more logins but measured slower: each of a login's
      // write steps then waited for a whole turn of a busy event loop).
      if (this.queued.length === 1) queueMicrotask(() => this.commitQueued());
    });
  }

  /** Commits the queued writes in one IMMEDIATE transaction; each caller learns its own outcome. */
  private commitQueued(): void {
    const batch = this.queued;
    if (batch.length === 0) return;
    this.queued = [];
    const durable = batch.some((w) => w.durable);
    let outcomes: Outcome[];
    try {
      if (durable) this.db.pragma('synchronous = FULL');
      outcomes = this.runBatch(batch);
    } catch (err) {
      for (const w of batch) w.reject(unavailable(err));
      return;
    } finally {
      if (durable) this.restoreNormalSync();
    }
    batch.forEach((w, i) => {
      const o = outcomes[i]!;
      if (o.ok) w.resolve(o.value);
      else w.reject(unavailable(o.err));
    });
  }

  /**
   * Usually every write succeeds: all of them in one transaction, no savepoints. A savepoint that
   * writes makes SQLite allocate a 64 KiB in-memory sub-journal chunk and copy pages into it; four
   * per login left dirty 64 KiB holes in the heap, where the next sessions' 64 KiB TLS read buffers
   * then landed, resident (+7 KiB per idle session, docs/benchmarks.md). When one write throws, the
   * whole batch has rolled back and runs again with each write in a savepoint of its own, so that
   * the failing one rolls back alone (the functions only read and write the store, so running one
   * twice is safe). A lone write's error is the transaction's.
   */
  private runBatch(batch: QueuedWrite[]): Outcome[] {
    try {
      return this.commitAll.immediate(batch);
    } catch (err) {
      if (batch.length === 1) throw err;
    }
    return this.commitEach.immediate(batch);
  }

  private restoreNormalSync(): void {
    try {
      if (this.db.open) this.db.pragma('synchronous = NORMAL');
    } catch (err) {
      this.onError?.(err instanceof Error ? err : new Error(String(err)));
    }
  }

  /** Commits the writes queued before it first, so that a caller reads what it wrote. */
  private read<T>(fn: () => T): T {
    try {
      this.commitQueued();
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
    await this.write(() => {
      this.st.upsertUser.run(user, on ? 1 : 0, now);
    }, true);
  }

  async deleteUser(user: string): Promise<void> {
    await this.write(() => {
      this.st.deleteUser.run(user);
    }, true);
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
    }, true);
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
    }, true);
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
    }, true);
  }

  /** Unknown device ids are ignored: the device may have been replaced meanwhile. */
  async setPushToken(deviceId: string, token: string | null, platform: 'android' | 'ios' | null): Promise<void> {
    await this.write(() => {
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
    await this.write(() => {
      const device = record<DeviceRecord>(this.st.getDevice.get(deviceId));
      if (!device) return;
      this.st.updateDevice.run(JSON.stringify({ ...device, lastUsedAt: at }), deviceId);
    });
  }

  async setWebPush(deviceId: string, subscription: WebPushSubscription | null): Promise<void> {
    await this.write(() => {
      const device = record<DeviceRecord>(this.st.getDevice.get(deviceId));
      if (!device) return;
      delete device.webPush;
      if (subscription) device.webPush = subscription;
      this.st.updateDevice.run(JSON.stringify(device), deviceId);
    });
  }

  async putApproval(approval: ApprovalRecord, now: number): Promise<void> {
    await this.write(() => {
      this.maybePurge(now);
      const a = approval;
      this.st.upsertApproval.run(a.user, a.scope, a.clientIp, a.approvedAt, a.expiresAt, JSON.stringify(a));
    }, true);
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
    }, true);
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
      if (cap) this.st.hit.run(cap.key, cap.windowMs, bucket, (bucket + 1) * cap.windowMs);
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
    }, true);
  }

  async expireRequests(now: number, limit: number, retentionMs: number): Promise<LoggedRequestEvent[]> {
    const events = await this.write(() => {
      this.maybePurge(now);
      return this.events.expire(now, limit, retentionMs);
    });
    for (const e of events) this.deliver(e);
    return events;
  }

  async appendEvent(event: StoreEvent, now: number, retentionMs: number): Promise<LoggedEvent> {
    if (this.closed) throw unavailable(new Error('store is closed'));
    const logged = await this.write(() => this.events.append(event, now, retentionMs));
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
    await this.write(() => this.audit.append(entries, now, retentionMs));
  }

  async readAudit(query: AuditQuery, now: number, retentionMs: number): Promise<AuditEntry[]> {
    return this.read(() => this.audit.read(query, now, retentionMs));
  }

  async hit(key: string, windowMs: number, now: number): Promise<number> {
    checkWindow(windowMs);
    return this.write(() => {
      this.maybePurge(now);
      const bucket = windowBucket(now, windowMs);
      this.st.hit.run(key, windowMs, bucket, (bucket + 1) * windowMs);
      return (this.st.count.get(key, windowMs, bucket) as { count: number }).count;
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
    await this.write(() => {
      this.st.clear.run(key, windowMs, windowBucket(now, windowMs));
    });
  }

  async release(key: string, windowMs: number, now: number): Promise<void> {
    checkWindow(windowMs);
    await this.write(() => {
      this.st.release.run(key, windowMs, windowBucket(now, windowMs));
    });
  }

  async setValue(key: string, value: string, ttlMs: number, now: number): Promise<void> {
    checkTtl(ttlMs);
    await this.write(() => {
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

  async replaceValue(key: string, expected: string, value: string, ttlMs: number, now: number): Promise<boolean> {
    checkTtl(ttlMs);
    return this.write(() => {
      const row = this.st.getValue.get(key, now) as { value: string } | undefined;
      if (row?.value !== expected) return false;
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
      const row = this.st.valueExpiry.get(key) as { expires_at: number } | undefined;
      this.st.deleteValue.run(key);
      return row !== undefined && row.expires_at > now;
    });
  }
  async pushToList(key: string, value: string, maxItems: number, ttlMs: number, now: number): Promise<void> {
    checkListArgs(maxItems, ttlMs);
    await this.write(() => {
      this.st.pushToList.run(key, value, now + ttlMs);
      this.st.trimList.run(key, key, maxItems);
    });
  }

  async readList(key: string, now: number): Promise<string[]> {
    return this.read(() => (this.st.readList.all(key, now) as { value: string }[]).map((r) => r.value));
  }


  /** In-process only: one SQLite file serves one mailotp process. */
  async publish(event: PublishedEvent): Promise<void> {
    if (this.closed) throw unavailable(new Error('store is closed'));
    this.deliver(event);
  }

  private deliver(event: PublishedEvent): void {
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

  subscribe(handler: (event: PublishedEvent) => void): Unsubscribe {
    // Wrapped so that the same function subscribed twice gets two independent subscriptions.
    const h = (e: PublishedEvent): void => handler(e);
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
    clearTimeout(this.checkpointerStart);
    this.handlers.clear();
    try {
      this.commitQueued();
    } finally {
      this.db.close();
      if (this.checkpointer) {
        // Unref'd while it runs; referenced now, so that the process waits for it to close its file.
        this.checkpointer.worker.ref();
        this.checkpointer.worker.postMessage('stop');
        await this.checkpointer.exited;
      }
    }
  }
}
