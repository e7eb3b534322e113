import type {
  ApprovalRecord,
  DeviceRecord,
  RequestRecord,
  PublishedEvent,
  RequestEvent,
  StoreEvent,
  UserRecord,
  WebPushSubscription,
} from '../types.js';

export type Unsubscribe = () => void;

export type CreateRequestResult =
  | { created: true; request: RequestRecord }
  /** A pending, unexpired request for the same user and client IP already exists: join it. */
  | { created: false; request: RequestRecord }
  /** Nothing to join and the cap's counter is at its maximum: nothing was created or counted. */
  | { created: false; request: null };

/**
 * A fixed-window counter (as hit/count use it) that a new request must fit under: the push cap.
 * Joining a pending request never touches it; creating one adds one, in the same atomic step, so
 * a burst of logins on several instances cannot open more requests than `max`.
 */
export interface RequestCap {
  key: string;
  windowMs: number;
  max: number;
}

/** An event as a device's event log keeps it: eventId orders it among all events of the store. */
export type LoggedEvent = StoreEvent & { eventId: number };
export type LoggedRequestEvent = RequestEvent & { eventId: number };

export interface EventLogRead {
  /** The device's events with an id above the one asked for, in id order. */
  events: LoggedEvent[];
  /** False when events after that id may have been dropped (older than the retention): the reader
   * cannot catch up event by event and has to start again from the current state. */
  complete: boolean;
}

/** One decision of the audit trail as the store keeps it; `fields` is the redacted log line's detail. */
export interface AuditEntry {
  /** When it was recorded, by the recorder's clock. */
  at: number;
  event: string;
  /** The canonical user name, when the event is about one user. */
  user?: string;
  fields: Record<string, unknown>;
}

export interface AuditQuery {
  /** Only this (canonical) user's events. */
  user?: string;
  /** Only events recorded at or after this time. */
  since: number;
  /** At most this many, the newest ones. */
  limit: number;
}

export type DecideResult =
  | { status: 'ok'; request: RequestRecord }
  | { status: 'not-found' }
  | { status: 'already-decided'; request: RequestRecord };

/**
 * The one storage contract. Every method that can fail because the backend is unreachable
 * rejects with MailotpError('MAILOTP_ERR_STORE_UNAVAILABLE'); callers fail closed on it.
 * `now` is passed in (from the injected clock) wherever expiry matters, so that records are
 * filtered by their own expiresAt and not by the backend's clock; backend TTLs only collect garbage.
 */
export interface Store {
  // users
  getUser(user: string): Promise<UserRecord | null>;
  setDaemonOtp(user: string, on: boolean, now: number): Promise<void>;

  /** Deletes the user's record (the daemon-OTP switch). */
  deleteUser(user: string): Promise<void>;
  /** Every user name that has a user record, a bound device or an approval (any spelling, each once).
   * For the start-up merge of names written before they were canonicalised. */
  listUserNames(): Promise<string[]>;

  // devices: at most one per user
  getDevice(deviceId: string): Promise<DeviceRecord | null>;
  getDeviceByUser(user: string): Promise<DeviceRecord | null>;
  /** Binds a device. Returns 'exists' (and changes nothing) when the user has one and replace is false.
   * With replace, the old device and its pending requests are removed. */
  putDevice(device: DeviceRecord, replace: boolean): Promise<'created' | 'exists'>;
  /** Clears the user's device and the pending requests addressed to it. Returns the removed device. */
  removeDevice(user: string): Promise<DeviceRecord | null>;
  setPushToken(deviceId: string, token: string | null, platform: 'android' | 'ios' | null): Promise<void>;
  /** Rebinds `from`'s device (same id and token) to `to`, atomically: 'missing' when `from` has none,
   * 'exists' (and changes nothing) when `to` has one already. */
  moveDevice(from: string, to: string): Promise<'moved' | 'missing' | 'exists'>;
  /** Records when the device last decided a request; unknown device ids are ignored. */
  touchDevice(deviceId: string, at: number): Promise<void>;
  /** Sets (or with null clears) the device's Web Push subscription; unknown device ids are ignored. */
  setWebPush(deviceId: string, subscription: WebPushSubscription | null): Promise<void>;

  // approvals
  putApproval(approval: ApprovalRecord, now: number): Promise<void>;
  getApproval(user: string, scope: string, now: number): Promise<ApprovalRecord | null>;
  /** Unexpired approvals, of one user or of all, ordered by approvedAt. */
  listApprovals(user: string | null, now: number): Promise<ApprovalRecord[]>;
  /** Deletes the user's approvals (only those for clientIp when given). Returns how many. */
  deleteApprovals(user: string, clientIp?: string): Promise<number>;

  // requests
  /** Atomically creates the request unless a pending, unexpired one exists for (user, clientIp, type);
   * with a cap, only while its counter is below the maximum, and counts the creation on it. */
  createRequest(request: RequestRecord, now: number, cap?: RequestCap): Promise<CreateRequestResult>;
  /** The request, decided or not, or null when unknown or expired. */
  getRequest(id: string, now: number): Promise<RequestRecord | null>;
  /** Pending, unexpired requests addressed to the device, oldest first. */
  listPendingRequests(deviceId: string, now: number): Promise<RequestRecord[]>;
  /** Compare-and-set pending → approved|denied. */
  decideRequest(id: string, status: 'approved' | 'denied', now: number): Promise<DecideResult>;

  /** Compare-and-set pending → expired of up to `limit` requests whose expiresAt <= now, each with a
   * request.expired event appended and published as by appendEvent, in the same atomic step. Every
   * request is claimed by exactly one caller, across instances. Returns those events. */
  expireRequests(now: number, limit: number, retentionMs: number): Promise<LoggedRequestEvent[]>;

  // per-device event logs: what an event stream replays after a reconnect (Last-Event-ID)
  /** Gives the event the next id (increasing across instances, in the order the appends commit),
   * appends it to the log of its request's device, drops that log's events older than retentionMs,
   * and publishes it with its eventId as publish() does. */
  appendEvent(event: StoreEvent, now: number, retentionMs: number): Promise<LoggedEvent>;
  /** The device's logged events after afterId, leaving out those older than retentionMs. */
  readEvents(deviceId: string, afterId: number, now: number, retentionMs: number): Promise<EventLogRead>;
  /** The id of the newest event appended to any log, 0 when none yet. */
  lastEventId(): Promise<number>;

  // the audit trail: decisions kept for the audit retention, queried by the admin CLI
  /** Appends the entries and drops every entry older than now - retentionMs, in one step. */
  appendAudit(entries: readonly AuditEntry[], now: number, retentionMs: number): Promise<void>;
  /** The matching entries within the retention, oldest first. */
  readAudit(query: AuditQuery, now: number, retentionMs: number): Promise<AuditEntry[]>;

  // fixed-window counters for rate limits
  /** Adds one to the counter for the window that `now` falls in and returns the new count. */
  hit(key: string, windowMs: number, now: number): Promise<number>;
  /** The count of the current window. */
  count(key: string, windowMs: number, now: number): Promise<number>;
  clear(key: string, windowMs: number, now: number): Promise<void>;
  /** Takes one hit back from the window `now` falls in, never below zero: a reservation made with
   * hit() that was not used. Pass the `now` of that hit so that the same window is settled. */
  release(key: string, windowMs: number, now: number): Promise<void>;

  // short-lived values shared by every instance: cool-downs, web sessions, pairing codes, replay guards.
  // Each expires at now + ttlMs of the caller's clock; reads filter on that, backend TTLs only collect garbage.
  /** Sets (or overwrites) the value. */
  setValue(key: string, value: string, ttlMs: number, now: number): Promise<void>;
  /** Sets the value only when the key holds no unexpired value; true when it was set. */
  setValueIfAbsent(key: string, value: string, ttlMs: number, now: number): Promise<boolean>;
  /** Compare-and-set: replaces the value only while the key holds `expected` (unexpired); true when
   * replaced. For records read, changed and written back, so that a concurrent change is not lost. */
  replaceValue(key: string, expected: string, value: string, ttlMs: number, now: number): Promise<boolean>;
  /** The unexpired value, or null. */
  getValue(key: string, now: number): Promise<string | null>;
  /** Reads and deletes in one atomic step (single-use codes): only one caller across instances gets it. */
  takeValue(key: string, now: number): Promise<string | null>;
  /** Deletes the value; true when an unexpired one was there. */
  deleteValue(key: string, now: number): Promise<boolean>;
  /** Adds a value to the front of a short list (e.g. a user's recent requests) that keeps at most
   * maxItems; each item expires at now + ttlMs. Concurrent pushes from several instances all land. */
  pushToList(key: string, value: string, maxItems: number, ttlMs: number, now: number): Promise<void>;
  /** The list's unexpired items, newest first. */
  readList(key: string, now: number): Promise<string[]>;

  // events to every instance (Redis pub/sub; in-process for SQLite)
  publish(event: PublishedEvent): Promise<void>;
  subscribe(handler: (event: PublishedEvent) => void): Unsubscribe;

  /** Rejects with MAILOTP_ERR_STORE_UNAVAILABLE when the backend cannot be reached. */
  ping(): Promise<void>;
  close(): Promise<void>;
}
