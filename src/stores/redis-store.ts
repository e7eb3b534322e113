import type { ConnectionOptions } from 'node:tls';
import { Redis, type RedisOptions } from 'ioredis';
import { MailotpError, isMailotpError } from '../core/errors.js';
import type { ApprovalRecord, DeviceRecord, PublishedEvent, RequestRecord, StoreEvent, UserRecord, WebPushSubscription } from '../core/types.js';
import {
  COUNTER_GRACE_MS,
  DEFAULT_KEY_PREFIX,
  REDIS_CAS_MAX_ATTEMPTS,
  REDIS_COMMAND_TIMEOUT_MS,
  REDIS_CONNECT_TIMEOUT_MS,
  REDIS_DISCONNECT_TIMEOUT_MS,
  REDIS_MAX_RECONNECT_DELAY_MS,
  REDIS_RECONNECT_STEP_MS,
  REDIS_WAIT_TIMEOUT_MS,
  REQUEST_GRACE_MS,
  RedisKeys,
  VALUE_GRACE_MS,
  checkListArgs,
  checkTtl,
  ttlMs,
  windowBucket,
} from './keys.js';
import type { AuditEntry, AuditQuery, CreateRequestResult, DecideResult, EventLogRead, LoggedEvent, LoggedRequestEvent, RequestCap, Store, Unsubscribe } from '../core/ports/store.js';
import { RedisApprovals } from './redis-approvals.js';
import { RedisAuditLog } from './redis-audit-log.js';
import { RedisEventLog } from './redis-event-log.js';
import { LUA_PRELUDE, SCRIPTS, type ScriptedRedis } from './redis-scripts.js';
import { RedisSubscriber } from './redis-subscriber.js';

/** Where Redis is: one server by URL, or the master that Redis Sentinel names (high availability). */
export type RedisTarget = { url: string } | { sentinels: { host: string; port: number }[]; sentinelName: string; auth?: SentinelAuth };

/** Credentials with Sentinel: the servers' (AUTH to master and replicas) and the sentinels' own. */
export interface SentinelAuth {
  password?: string | undefined;
  username?: string | undefined;
  sentinelPassword?: string | undefined;
  sentinelUsername?: string | undefined;
}

export type RedisStoreOptions = RedisTarget & {
  keyPrefix?: string;
  connectTimeoutMs?: number;
  commandTimeoutMs?: number;
  /** Replicas that must have an approval (WAIT) before putApproval resolves; 0: do not wait. */
  waitReplicas?: number;
  waitTimeoutMs?: number;
  /** TLS options: with url (rediss://) for the server, with sentinels for them and the servers they name. */
  tls?: ConnectionOptions;
  /** Told about connection errors and subscriber handler errors; none of them is ever thrown unhandled. */
  onError?: (err: Error) => void;
};

function toError(err: unknown): Error {
  return err instanceof Error ? err : new Error(String(err));
}

function unavailable(err: unknown): MailotpError {
  if (isMailotpError(err)) return err;
  return new MailotpError('MAILOTP_ERR_STORE_UNAVAILABLE', `redis store: ${toError(err).message}`, { cause: err });
}

function parse<T>(raw: string | null | undefined): T | null {
  return raw === null || raw === undefined ? null : (JSON.parse(raw) as T);
}

/** The value of a stored `{"v","e"}` body when it has not expired by `now`. */
function unexpired(raw: string | null, now: number): string | null {
  const body = parse<{ v: string; e: number }>(raw);
  return body && body.e > now ? body.v : null;
}

function checkWindow(windowMs: number): void {
  if (!Number.isFinite(windowMs) || windowMs <= 0) {
    throw new MailotpError('MAILOTP_ERR_BAD_INPUT', `counter window must be positive, got ${windowMs}`);
  }
}

/**
 * Shared store for several mailotp instances. It fails closed and fast: no offline queue, no retry of a
 * command, a command timeout; so while Redis is down every call rejects at once with
 * MAILOTP_ERR_STORE_UNAVAILABLE, and the connection keeps reconnecting in the background so that the
 * store works again by itself when Redis is back.
 */
export class RedisStore implements Store {
  private readonly redis: ScriptedRedis;
  private readonly keys: RedisKeys;
  private readonly channel: string;
  private readonly onError: ((err: Error) => void) | undefined;
  private readonly connectTimeoutMs: number;
  private readonly subscriber: RedisSubscriber;
  private readonly events: RedisEventLog;
  private readonly approvals: RedisApprovals;
  private readonly audit: RedisAuditLog;
  private readonly waitReplicas: number;
  private readonly waitTimeoutMs: number;
  private everReady = false;
  private firstAttempt: Promise<void> | null = null;
  private closed = false;

  constructor(options: RedisStoreOptions) {
    this.keys = new RedisKeys(options.keyPrefix ?? DEFAULT_KEY_PREFIX);
    this.channel = this.keys.events();
    this.onError = options.onError;
    this.connectTimeoutMs = options.connectTimeoutMs ?? REDIS_CONNECT_TIMEOUT_MS;
    this.waitReplicas = options.waitReplicas ?? 0;
    this.waitTimeoutMs = options.waitTimeoutMs ?? REDIS_WAIT_TIMEOUT_MS;
    const common: RedisOptions = {
      enableOfflineQueue: false,
      // 0: a command in flight when the connection drops is rejected, never replayed (INCR must not count twice).
      maxRetriesPerRequest: 0,
      autoResendUnfulfilledCommands: false,
      // WAIT blocks for up to its own timeout; the client must not give up on it first.
      commandTimeout: Math.max(options.commandTimeoutMs ?? REDIS_COMMAND_TIMEOUT_MS, this.waitReplicas > 0 ? this.waitTimeoutMs + 1_000 : 0),
      connectTimeout: this.connectTimeoutMs,
      retryStrategy: (times: number) => Math.min(times * REDIS_RECONNECT_STEP_MS, REDIS_MAX_RECONNECT_DELAY_MS),
      disconnectTimeout: REDIS_DISCONNECT_TIMEOUT_MS,
      // A master demoted under us (it came back after a failover) refuses writes: find the new one.
      reconnectOnError: (err: Error) => err.message.startsWith('READONLY'),
    };
    const redis =
      'url' in options
        ? new Redis(options.url, { ...common, ...(options.tls ? { tls: options.tls } : {}) })
        : new Redis({
            ...common,
            sentinels: options.sentinels,
            name: options.sentinelName,
            ...options.auth,
            // TLS to the sentinels and to the master and replicas they name alike.
            ...(options.tls ? { tls: options.tls, sentinelTLS: options.tls, enableTLSForSentinelMode: true } : {}),
            // No failoverDetector: a killed master is noticed by the reconnect attempts (≤ 1 s apart, the
            // measured gap was the same with it), a demoted live one by READONLY; and its side connections
            // to the sentinels have no error listener, so a sentinel down would print to stderr.
            sentinelRetryStrategy: (times: number) => Math.min(times * REDIS_RECONNECT_STEP_MS, REDIS_MAX_RECONNECT_DELAY_MS),
          });
    for (const [name, s] of Object.entries(SCRIPTS)) {
      redis.defineCommand(name, { numberOfKeys: s.numberOfKeys, lua: LUA_PRELUDE + s.lua });
    }
    this.redis = redis as ScriptedRedis;
    this.redis.on('error', (err: Error) => this.onError?.(err));
    this.redis.once('ready', () => {
      this.everReady = true;
    });
    this.subscriber = new RedisSubscriber(this.redis, this.channel, this.onError);
    this.events = new RedisEventLog((fn) => this.run(fn), this.keys, this.channel);
    this.approvals = new RedisApprovals((fn) => this.run(fn), this.keys);
    this.audit = new RedisAuditLog((fn) => this.run(fn), this.keys);
  }

  /**
   * Without an offline queue, a call made right after construction would fail while the first
   * connection is still being set up; so until the first 'ready', calls wait for it (bounded).
   * Afterwards nothing waits: a lost connection fails calls immediately.
   */
  private async run<T>(fn: (r: ScriptedRedis) => Promise<T>): Promise<T> {
    if (this.closed) throw unavailable(new Error('store is closed'));
    if (!this.everReady && ['wait', 'connecting', 'connect'].includes(this.redis.status)) {
      await this.firstAttemptSettled();
    }
    try {
      return await fn(this.redis);
    } catch (err) {
      throw unavailable(err);
    }
  }

  /** Resolves when the first connection attempt succeeds or fails, or after connectTimeoutMs.
   * Shared by all waiting calls, so a burst of early calls adds one pair of listeners, not one each. */
  private firstAttemptSettled(): Promise<void> {
    this.firstAttempt ??= new Promise((resolve) => {
      const done = (): void => {
        clearTimeout(timer);
        this.redis.off('ready', done);
        this.redis.off('close', done);
        this.firstAttempt = null;
        resolve();
      };
      const timer = setTimeout(done, this.connectTimeoutMs);
      this.redis.once('ready', done);
      this.redis.once('close', done);
    });
    return this.firstAttempt;
  }

  async getUser(user: string): Promise<UserRecord | null> {
    return this.run(async (r) => parse<UserRecord>(await r.get(this.keys.user(user))));
  }

  async setDaemonOtp(user: string, on: boolean, now: number): Promise<void> {
    const rec: UserRecord = { user, daemonOtp: on, updatedAt: now };
    await this.run((r) => r.set(this.keys.user(user), JSON.stringify(rec)));
  }

  async deleteUser(user: string): Promise<void> {
    await this.run((r) => r.del(this.keys.user(user)));
  }

  async listUserNames(): Promise<string[]> {
    return this.run(async (r) => {
      const names = new Set<string>();
      for (const kind of ['user:', 'device-of:'] as const) {
        const base = this.keys.prefix + kind;
        let cursor = '0';
        do {
          const [next, keys] = await r.scan(cursor, 'MATCH', `${globEscape(base)}*`, 'COUNT', 500);
          cursor = next;
          for (const k of keys) names.add(unKeyPart(k.slice(base.length)));
        } while (cursor !== '0');
      }
      for (const u of await r.smembers(this.keys.approvalUsers())) names.add(u);
      return [...names];
    });
  }

  async moveDevice(from: string, to: string): Promise<'moved' | 'missing' | 'exists'> {
    for (let attempt = 0; attempt < REDIS_CAS_MAX_ATTEMPTS; attempt++) {
      const device = await this.getDeviceByUser(from);
      if (!device) return 'missing';
      const res = await this.run((r) =>
        r.mailotpMoveDevice(this.keys.deviceOf(from), this.keys.deviceOf(to), this.keys.device(device.deviceId), device.deviceId, JSON.stringify({ ...device, user: to })),
      );
      if (res === 'moved' || res === 'exists') return res;
    }
    throw new MailotpError('MAILOTP_ERR_STORE_UNAVAILABLE', `redis store: the device of ${JSON.stringify(from)} kept changing`);
  }

  async getDevice(deviceId: string): Promise<DeviceRecord | null> {
    return this.run(async (r) => parse<DeviceRecord>(await r.get(this.keys.device(deviceId))));
  }

  async getDeviceByUser(user: string): Promise<DeviceRecord | null> {
    return this.run(async (r) => {
      const device = parse<DeviceRecord>((await r.mailotpDeviceOfUser(this.keys.deviceOf(user), this.keys.deviceBase)) as string | null);
      return device && device.user === user ? device : null;
    });
  }

  private deviceScriptBases(): [string, string, string] {
    return [this.keys.deviceBase, this.keys.devicePendingBase, this.keys.requestBase];
  }

  async putDevice(device: DeviceRecord, replace: boolean): Promise<'created' | 'exists'> {
    const res = await this.run((r) =>
      r.mailotpPutDevice(
        this.keys.deviceOf(device.user),
        this.keys.device(device.deviceId),
        ...this.deviceScriptBases(),
        device.deviceId,
        JSON.stringify(device),
        replace ? '1' : '0',
      ),
    );
    if (res === 'conflict') {
      throw new MailotpError('MAILOTP_ERR_BAD_INPUT', 'device id already belongs to another user');
    }
    return res === 'exists' ? 'exists' : 'created';
  }

  async removeDevice(user: string): Promise<DeviceRecord | null> {
    return this.run(async (r) =>
      parse<DeviceRecord>(
        (await r.mailotpRemoveDevice(this.keys.deviceOf(user), ...this.deviceScriptBases())) as string | null,
      ),
    );
  }

  /** Unknown device ids are ignored: the device may have been replaced meanwhile. */
  async setPushToken(deviceId: string, token: string | null, platform: 'android' | 'ios' | null): Promise<void> {
    const key = this.keys.device(deviceId);
    await this.compareAndSet<DeviceRecord>(key, (d) => {
      const next: DeviceRecord = { ...d };
      delete next.pushToken;
      delete next.pushPlatform;
      if (token !== null) {
        next.pushToken = token;
        if (platform !== null) next.pushPlatform = platform;
      }
      return next;
    });
  }

  async touchDevice(deviceId: string, at: number): Promise<void> {
    await this.compareAndSet<DeviceRecord>(this.keys.device(deviceId), (d) => ({ ...d, lastUsedAt: at }));
  }

  async setWebPush(deviceId: string, subscription: WebPushSubscription | null): Promise<void> {
    await this.compareAndSet<DeviceRecord>(this.keys.device(deviceId), (d) => {
      const next: DeviceRecord = { ...d };
      delete next.webPush;
      if (subscription) next.webPush = subscription;
      return next;
    });
  }

  /** Optimistic read-modify-write of one JSON record; the change is computed here, not in Lua. */
  private async compareAndSet<T>(key: string, change: (current: T) => T): Promise<void> {
    for (let attempt = 0; attempt < REDIS_CAS_MAX_ATTEMPTS; attempt++) {
      const swapped = await this.run(async (r) => {
        const raw = await r.get(key);
        if (raw === null) return true;
        const next = JSON.stringify(change(JSON.parse(raw) as T));
        return (await r.mailotpCompareAndSet(key, raw, next)) === 1;
      });
      if (swapped) return;
    }
    throw unavailable(new Error(`too much contention on ${key}`));
  }

  /**
   * With waitReplicas, resolves only once that many replicas have the approval (and every write this
   * connection made before it, the decided request included), so a tap the phone saw acknowledged
   * survives a failover. When they do not confirm in time the call fails: the approval may or may not
   * survive a failover, and the phone is told to try again rather than told it worked.
   */
  async putApproval(approval: ApprovalRecord, now: number): Promise<void> {
    await this.approvals.put(approval, now);
    if (this.waitReplicas === 0) return;
    const acked = await this.run((r) => r.wait(this.waitReplicas, this.waitTimeoutMs));
    if (acked < this.waitReplicas) {
      throw new MailotpError(
        'MAILOTP_ERR_STORE_UNAVAILABLE',
        `redis store: the approval reached ${acked} of ${this.waitReplicas} replicas within ${this.waitTimeoutMs} ms`,
      );
    }
  }

  getApproval(user: string, scope: string, now: number): Promise<ApprovalRecord | null> {
    return this.approvals.get(user, scope, now);
  }

  listApprovals(user: string | null, now: number): Promise<ApprovalRecord[]> {
    return this.approvals.list(user, now);
  }

  deleteApprovals(user: string, clientIp?: string): Promise<number> {
    return this.approvals.delete(user, clientIp);
  }

  async createRequest(request: RequestRecord, now: number, cap?: RequestCap): Promise<CreateRequestResult> {
    if (cap) checkWindow(cap.windowMs);
    const bucket = cap ? windowBucket(now, cap.windowMs) : 0;
    const res = (await this.run((r) =>
      r.mailotpCreateRequest(
        this.keys.openRequest(request.user, request.clientIp, request.type),
        this.keys.request(request.id),
        this.keys.devicePending(request.deviceId),
        this.keys.requestExpiry(),
        // Without a cap the script never reads this key; any key of the request's slot will do.
        cap ? this.keys.counter(cap.key, cap.windowMs, bucket) : this.keys.request(request.id),
        request.id,
        JSON.stringify(request),
        now,
        ttlMs(request.expiresAt, now, REQUEST_GRACE_MS),
        request.createdAt,
        this.keys.requestBase,
        request.expiresAt,
        cap ? cap.max : '',
        cap ? ttlMs((bucket + 1) * cap.windowMs, now, COUNTER_GRACE_MS) : '',
      ),
    )) as [number, string?];
    if (res[0] === -1) throw new MailotpError('MAILOTP_ERR_BAD_INPUT', 'request id already used');
    if (res[0] === 2) return { created: false, request: null };
    if (res[0] === 0 && res[1] !== undefined) {
      return { created: false, request: JSON.parse(res[1]) as RequestRecord };
    }
    return { created: true, request: structuredClone(request) };
  }

  async getRequest(id: string, now: number): Promise<RequestRecord | null> {
    const q = await this.run(async (r) => parse<RequestRecord>(await r.get(this.keys.request(id))));
    return q && q.expiresAt > now ? q : null;
  }

  async listPendingRequests(deviceId: string, now: number): Promise<RequestRecord[]> {
    const setKey = this.keys.devicePending(deviceId);
    return this.run(async (r) => {
      const ids = await r.zrange(setKey, 0, -1);
      if (ids.length === 0) return [];
      const raws = await r.mget(ids.map((id) => this.keys.request(id)));
      const out: RequestRecord[] = [];
      const stale: string[] = [];
      ids.forEach((id, i) => {
        const q = parse<RequestRecord>(raws[i]);
        const live = q !== null && q.status === 'pending' && q.deviceId === deviceId;
        if (live && q.expiresAt > now) out.push(q);
        // Expired ones stay for the grace period, like the records themselves.
        else if (!live || q.expiresAt < now - REQUEST_GRACE_MS) stale.push(id);
      });
      if (stale.length > 0) await r.zrem(setKey, ...stale);
      return out;
    });
  }

  async decideRequest(id: string, status: 'approved' | 'denied', now: number): Promise<DecideResult> {
    const key = this.keys.request(id);
    for (let attempt = 0; attempt < REDIS_CAS_MAX_ATTEMPTS; attempt++) {
      const result = await this.run(async (r): Promise<DecideResult | null> => {
        const raw = await r.get(key);
        const q = parse<RequestRecord>(raw);
        if (raw === null || q === null || q.expiresAt <= now) return { status: 'not-found' };
        if (q.status !== 'pending') return { status: 'already-decided', request: q };
        const next: RequestRecord = { ...q, status, decidedAt: now };
        const swapped = await r.mailotpDecideRequest(
          key,
          this.keys.devicePending(q.deviceId),
          this.keys.openRequest(q.user, q.clientIp, q.type),
          raw,
          JSON.stringify(next),
          id,
        );
        return swapped === 1 ? { status: 'ok', request: next } : null;
      });
      // null: someone else changed the record between our read and our swap; read it again.
      if (result !== null) return result;
    }
    throw unavailable(new Error(`too much contention on request ${id}`));
  }

  async hit(key: string, windowMs: number, now: number): Promise<number> {
    checkWindow(windowMs);
    const bucket = windowBucket(now, windowMs);
    const ttl = ttlMs((bucket + 1) * windowMs, now, COUNTER_GRACE_MS);
    return this.run(async (r) => Number(await r.mailotpHit(this.keys.counter(key, windowMs, bucket), ttl)));
  }

  async count(key: string, windowMs: number, now: number): Promise<number> {
    checkWindow(windowMs);
    const k = this.keys.counter(key, windowMs, windowBucket(now, windowMs));
    return this.run(async (r) => Number((await r.get(k)) ?? 0));
  }

  async clear(key: string, windowMs: number, now: number): Promise<void> {
    checkWindow(windowMs);
    const k = this.keys.counter(key, windowMs, windowBucket(now, windowMs));
    await this.run((r) => r.del(k));
  }

  async release(key: string, windowMs: number, now: number): Promise<void> {
    checkWindow(windowMs);
    const k = this.keys.counter(key, windowMs, windowBucket(now, windowMs));
    await this.run((r) => r.mailotpRelease(k));
  }

  async setValue(key: string, value: string, ttl: number, now: number): Promise<void> {
    checkTtl(ttl);
    const body = JSON.stringify({ v: value, e: now + ttl });
    await this.run((r) => r.set(this.keys.value(key), body, 'PX', ttlMs(now + ttl, now, VALUE_GRACE_MS)));
  }

  async setValueIfAbsent(key: string, value: string, ttl: number, now: number): Promise<boolean> {
    checkTtl(ttl);
    const body = JSON.stringify({ v: value, e: now + ttl });
    const px = ttlMs(now + ttl, now, VALUE_GRACE_MS);
    return this.run(async (r) => Number(await r.mailotpSetValueIfAbsent(this.keys.value(key), now, px, body)) === 1);
  }

  async replaceValue(key: string, expected: string, value: string, ttl: number, now: number): Promise<boolean> {
    checkTtl(ttl);
    const body = JSON.stringify({ v: value, e: now + ttl });
    const px = ttlMs(now + ttl, now, VALUE_GRACE_MS);
    return this.run(async (r) => Number(await r.mailotpReplaceValue(this.keys.value(key), now, px, expected, body)) === 1);
  }

  async getValue(key: string, now: number): Promise<string | null> {
    return this.run(async (r) => unexpired(await r.get(this.keys.value(key)), now));
  }

  async takeValue(key: string, now: number): Promise<string | null> {
    return this.run(async (r) => unexpired(await r.getdel(this.keys.value(key)), now));
  }

  async deleteValue(key: string, now: number): Promise<boolean> {
    return this.run(async (r) => unexpired(await r.getdel(this.keys.value(key)), now) !== null);
  }

  async pushToList(key: string, value: string, maxItems: number, ttl: number, now: number): Promise<void> {
    checkListArgs(maxItems, ttl);
    const k = this.keys.list(key);
    const body = JSON.stringify({ v: value, e: now + ttl });
    // One MULTI: the push, the trim and the TTL land together, and concurrent pushes all land.
    await this.run((r) =>
      r
        .multi()
        .lpush(k, body)
        .ltrim(k, 0, maxItems - 1)
        .pexpire(k, ttlMs(now + ttl, now, VALUE_GRACE_MS))
        .exec(),
    );
  }

  async readList(key: string, now: number): Promise<string[]> {
    const raw = await this.run((r) => r.lrange(this.keys.list(key), 0, -1));
    return raw.map((item) => unexpired(item, now)).filter((v): v is string => v !== null);
  }

  async publish(event: PublishedEvent): Promise<void> {
    await this.run((r) => r.publish(this.channel, JSON.stringify(event)));
  }

  subscribe(handler: (event: PublishedEvent) => void): Unsubscribe {
    if (this.closed) return () => {};
    return this.subscriber.subscribe(handler);
  }

  async expireRequests(now: number, limit: number, retentionMs: number): Promise<LoggedRequestEvent[]> {
    return this.events.expire(now, limit, retentionMs);
  }

  async appendEvent(event: StoreEvent, now: number, retentionMs: number): Promise<LoggedEvent> {
    return this.events.append(event, now, retentionMs);
  }

  async readEvents(deviceId: string, afterId: number, now: number, retentionMs: number): Promise<EventLogRead> {
    return this.events.read(deviceId, afterId, now, retentionMs);
  }

  async lastEventId(): Promise<number> {
    return this.events.lastId();
  }

  appendAudit(entries: readonly AuditEntry[], now: number, retentionMs: number): Promise<void> {
    return this.audit.append(entries, now, retentionMs);
  }

  readAudit(query: AuditQuery, now: number, retentionMs: number): Promise<AuditEntry[]> {
    return this.audit.read(query, now, retentionMs);
  }

  async ping(): Promise<void> {
    await this.run((r) => r.ping());
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    const sub = this.subscriber.close();
    await Promise.all([quit(this.redis), sub ? quit(sub) : Promise.resolve()]);
  }
}

/** QUIT when connected (lets replies in flight arrive); then stop reconnecting, which also closes
 * any Sentinel connections the client keeps on the side (QUIT alone leaves those reconnecting). */
async function quit(r: Redis): Promise<void> {
  if (r.status === 'ready') {
    try {
      await r.quit();
    } catch {
      // the connection went away meanwhile
    }
  }
  r.disconnect();
}

/** MATCH patterns treat * ? [ ] and \\ specially; a key prefix may contain any of them. */
function globEscape(s: string): string {
  return s.replace(/[*?[\]\\]/g, '\\$&');
}

/** The inverse of keyPart. */
function unKeyPart(s: string): string {
  return s.replace(/%3A/g, ':').replace(/%25/g, '%');
}
