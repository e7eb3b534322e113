import { MailotpError } from '../core/errors.js';
/**
 * Every Redis key name and every store timing constant, in one place, so that the SQLite and
 * Redis stores keep records for the same time and an operator can find any key from here.
 *
 * Key layout, with P the key prefix (default "mailotp:") and every variable part escaped by keyPart:
 *   P user:<user>                          JSON UserRecord, no TTL
 *   P device:<deviceId>                    JSON DeviceRecord, no TTL
 *   P device-of:<user>                     deviceId of the user's one device, no TTL
 *   P approvals:<user>                     hash scope → JSON ApprovalRecord; TTL = latest expiresAt + grace
 *   P approval-users                       set of users that may have approvals (pruned by listApprovals)
 *   P req:<id>                             JSON RequestRecord; TTL = expiresAt + grace
 *   P req-open:<user>:<clientIp>:<type>    id of the newest request for that triple; TTL = expiresAt + grace
 *   P dev-pending:<deviceId>               sorted set of request ids by createdAt; pruned on read
 *   P req-expiry                           sorted set of request ids by expiresAt, for the expiry sweep;
 *                                          members leave when swept (decided or gone ones too)
 *   P ctr:<key>:<windowMs>:<bucket>        fixed-window counter; TTL = window end + grace
 *   P val:<key>                            short-lived value `{"v":value,"e":expiresAt}`; TTL = expiresAt + grace
 *   P list:<key>                           short list, newest first, items `{"v":value,"e":expiresAt}`; trimmed
 *                                          to its length on push; TTL = newest item's expiresAt + grace
 *   P events                               pub/sub channel of JSON StoreEvents
 *   P event-seq                            the last event id given out (INCR), no TTL
 *   P dev-events:<deviceId>                sorted set: logged events of the device by eventId, members
 *                                          `{"eventId":N,"at":T,...event}`; TTL = EVENT_LOG_IDLE_TTL_MS
 *   P dev-events-floor:<deviceId>          the highest eventId dropped from that log; same TTL
 *   P audit                                sorted set: the audit trail by time, members `<seq>:<nonce>|{JSON}`;
 *                                          trimmed to audit.retention on every append, no TTL
 *   P audit-of:<user>                      the same entries of one user; TTL = audit.retention + grace
 */

export const DEFAULT_KEY_PREFIX = 'mailotp:';

/** Records outlive their expiresAt by a grace period so that instances whose clocks lag a little
 * still find them; reads filter on expiresAt anyway, so the grace never extends a record's validity. */
export const REQUEST_GRACE_MS = 60_000;
export const APPROVAL_GRACE_MS = 60_000;
export const COUNTER_GRACE_MS = 5_000;
export const VALUE_GRACE_MS = 60_000;

/** How long a device's event log (and the record of what it dropped) outlives its last event. Its
 * events are dropped after the caller's retention anyway; this only bounds what an idle or removed
 * device leaves behind, and it must be long, because a forgotten floor cannot tell a reader that it
 * missed something. */
export const EVENT_LOG_IDLE_TTL_MS = 7 * 24 * 3_600_000;

/** SQLite deletes expired rows on writes, but at most this often, to keep the hot paths cheap. */
export const SQLITE_PURGE_INTERVAL_MS = 60_000;
/** Long enough to ride out another process's write transaction on the same file, short enough to fail closed. */
export const SQLITE_BUSY_TIMEOUT_MS = 5_000;
/** How often the SQLite store's checkpointer thread checkpoints the WAL (PASSIVE). */
export const SQLITE_CHECKPOINT_INTERVAL_MS = 1_000;
/** Bumped when the SQLite schema changes; stored in PRAGMA user_version. */
export const SQLITE_SCHEMA_VERSION = 3;

export const REDIS_COMMAND_TIMEOUT_MS = 2_000;
export const REDIS_CONNECT_TIMEOUT_MS = 2_000;
/** How long a tap waits for replicas to confirm its approval (store.waitTimeout). */
export const REDIS_WAIT_TIMEOUT_MS = 1_000;
/** Reconnect backoff: attempt n waits n × step, capped, so Redis coming back is noticed within about the cap. */
export const REDIS_RECONNECT_STEP_MS = 100;
export const REDIS_MAX_RECONNECT_DELAY_MS = 1_000;
/** Grace for closing a connection that is not up; ioredis's default 2 s timer would hold the process open. */
export const REDIS_DISCONNECT_TIMEOUT_MS = 200;
/** Optimistic read-modify-write retries before giving up; contention on one record is rare. */
export const REDIS_CAS_MAX_ATTEMPTS = 16;

/** Escapes ':' (the separator) and '%' (the escape) so that distinct parts never build the same key,
 * e.g. user "a" with IPv6 "::1" versus user "a:" with "1". Mirrored by the Lua `esc` in redis-store.ts. */
export function keyPart(s: string): string {
  return s.replace(/%/g, '%25').replace(/:/g, '%3A');
}

/** A TTL for a record that expires at expiresAt, measured from the caller's clock, never below 1 ms. */
export function ttlMs(expiresAt: number, now: number, graceMs: number): number {
  return Math.max(1, Math.ceil(expiresAt - now + graceMs));
}

export function checkTtl(ttl: number): void {
  if (!Number.isFinite(ttl) || ttl <= 0) {
    throw new MailotpError('MAILOTP_ERR_BAD_INPUT', `a value's ttl must be positive, got ${ttl}`);
  }
}

/** A short list keeps at least one and at most a few hundred items; each item needs a positive TTL. */
export function checkListArgs(maxItems: number, ttl: number): void {
  checkTtl(ttl);
  if (!Number.isInteger(maxItems) || maxItems < 1 || maxItems > 1000) {
    throw new MailotpError('MAILOTP_ERR_BAD_INPUT', `a list keeps 1 to 1000 items, got ${maxItems}`);
  }
}

/** The fixed window that `now` falls in. */
export function windowBucket(now: number, windowMs: number): number {
  return Math.floor(now / windowMs);
}

/** Builds the Redis key names for one prefix. */
export class RedisKeys {
  /** Bases that the Lua scripts append escaped ids to, so Lua and TS build identical keys. */
  readonly deviceBase: string;
  readonly requestBase: string;
  readonly devicePendingBase: string;

  constructor(readonly prefix: string) {
    this.deviceBase = `${prefix}device:`;
    this.requestBase = `${prefix}req:`;
    this.devicePendingBase = `${prefix}dev-pending:`;
  }

  user(user: string): string {
    return `${this.prefix}user:${keyPart(user)}`;
  }
  device(deviceId: string): string {
    return this.deviceBase + keyPart(deviceId);
  }
  deviceOf(user: string): string {
    return `${this.prefix}device-of:${keyPart(user)}`;
  }
  approvals(user: string): string {
    return `${this.prefix}approvals:${keyPart(user)}`;
  }
  approvalUsers(): string {
    return `${this.prefix}approval-users`;
  }
  request(id: string): string {
    return this.requestBase + keyPart(id);
  }
  openRequest(user: string, clientIp: string, type: string): string {
    return `${this.prefix}req-open:${keyPart(user)}:${keyPart(clientIp)}:${keyPart(type)}`;
  }
  devicePending(deviceId: string): string {
    return this.devicePendingBase + keyPart(deviceId);
  }
  requestExpiry(): string {
    return `${this.prefix}req-expiry`;
  }
  eventSeq(): string {
    return `${this.prefix}event-seq`;
  }
  eventLog(deviceId: string): string {
    return `${this.prefix}dev-events:${keyPart(deviceId)}`;
  }
  eventFloor(deviceId: string): string {
    return `${this.prefix}dev-events-floor:${keyPart(deviceId)}`;
  }
  counter(key: string, windowMs: number, bucket: number): string {
    return `${this.prefix}ctr:${keyPart(key)}:${windowMs}:${bucket}`;
  }
  value(key: string): string {
    return `${this.prefix}val:${keyPart(key)}`;
  }
  list(key: string): string {
    return `${this.prefix}list:${keyPart(key)}`;
  }
  events(): string {
    return `${this.prefix}events`;
  }
  audit(): string {
    return `${this.prefix}audit`;
  }
  auditOf(user: string): string {
    return `${this.prefix}audit-of:${keyPart(user)}`;
  }
}
