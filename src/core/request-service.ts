import { randomInt, timingSafeEqual } from 'node:crypto';
import type { Logger } from '../log/logger.js';
import { PushSubscriptionGoneError, PushTokenRejectedError, type Notifier, type NotifyOutcome } from './ports/notifier.js';
import type { EventLogRead, LoggedRequestEvent, RequestCap, Store, Unsubscribe } from './ports/store.js';
import type { ApprovalService } from './approval-service.js';
import { deadline, systemScheduler, type Clock, type Scheduler, type Timer } from './clock.js';
import { cleanClientName } from './client-name.js';
import type { Cooldowns } from './cooldowns.js';
import type { DeviceNotice, DeviceRecord, Protocol, RequestRecord, StoreEvent } from './types.js';
import { newRequestId } from './tokens.js';

/** 'report': "this wasn't me": a deny that also starts the longer cool-down and is announced as such. */
export type Decision = 'approve' | 'deny' | 'report';
export type DecideOutcome =
  | { status: 'approved' | 'denied'; request: RequestRecord }
  | { status: 'not-found' }
  | { status: 'already-decided'; request: RequestRecord }
  | { status: 'wrong-number' };

export type WaitOutcome = 'approved' | 'denied' | 'timeout' | 'aborted';

export interface RequestSettings {
  requestTtlMs: number;
  /** How often a held login re-reads its request, in case an event was lost [2000]. */
  recheckMs?: number;
  /** How often the expiry sweep looks for requests that expired unanswered [1000]. */
  sweepIntervalMs?: number;
}

/** Logged events outlive the request TTL by this much, so a late settle is still in the log. */
const EVENT_RETENTION_GRACE_MS = 60_000;
const DEFAULT_SWEEP_INTERVAL_MS = 1_000;
/** Requests claimed per store call, and calls per sweep: bounds one tick's work after an outage. */
const SWEEP_BATCH = 100;
const SWEEP_MAX_BATCHES = 10;

export interface LoginRequestInput {
  user: string;
  device: DeviceRecord;
  clientIp: string;
  /** The browser or client, as it named itself. */
  clientName?: string;
}

export interface ConnectionRequestInput extends LoginRequestInput {
  protocol: Protocol;
}

/** A decided or expired request as the user's settings page lists it. */
export interface RecentRequest {
  id: string;
  type: RequestRecord['type'];
  protocol: RequestRecord['protocol'];
  clientIp: string;
  clientName?: string;
  createdAt: number;
  status: RequestRecord['status'];
  decidedAt?: number;
}

const RECENT_MAX = 20;
const RECENT_TTL_MS = 30 * 24 * 3_600_000;

function recentKey(user: string): string {
  return `recent:${user}`;
}

/** Three distinct numbers 10..99 and the one among them the sign-in page shows. */
export function numberChoices(): { choices: number[]; match: number } {
  const picked = new Set<number>();
  while (picked.size < 3) picked.add(randomInt(10, 100));
  const choices = [...picked];
  return { choices, match: choices[randomInt(0, 3)]! };
}

export interface OpenedRequest {
  request: RequestRecord;
  /** false: joined the pending request of the same user and client IP. */
  created: boolean;
}

/** Pending requests: opening or joining one, answering it, and waiting for the answer. */
export class RequestService {
  private sweeper: { timer: Timer | null; running: boolean } | null = null;

  constructor(
    private readonly store: Store,
    private readonly clock: Clock,
    private readonly approvals: ApprovalService,
    private readonly notifiers: readonly Notifier[],
    private readonly logger: Logger,
    private readonly settings: RequestSettings,
    private readonly cooldowns: Cooldowns,
    /** The hold's timers and the sweep's interval; a test drives them with a FakeClock. */
    private readonly scheduler: Scheduler = systemScheduler,
  ) {}

  /** How long the device event logs keep an event: a reconnecting stream replays this far back. */
  get eventRetentionMs(): number {
    return this.settings.requestTtlMs + EVENT_RETENTION_GRACE_MS;
  }

  /**
   * Opens a connection request, or joins the pending one of the same user and client IP. With a cap,
   * a new request is opened only under it ('capped' otherwise); joining is always allowed.
   */
  async openConnection(input: ConnectionRequestInput): Promise<OpenedRequest>;
  async openConnection(input: ConnectionRequestInput, cap: RequestCap): Promise<OpenedRequest | 'capped'>;
  async openConnection(input: ConnectionRequestInput, cap?: RequestCap): Promise<OpenedRequest | 'capped'> {
    return this.open(input, { type: 'connection', protocol: input.protocol }, cap);
  }

  /**
   * Opens a web sign-in request with number matching: the device gets three distinct two-digit
   * `choices`, the sign-in page shows `matchNumber` (one of them, never sent to the device).
   * A second sign-in from the same user and address while one is pending joins it (same number).
   * The push cap applies as to connection requests.
   */
  async openLogin(input: LoginRequestInput): Promise<OpenedRequest>;
  async openLogin(input: LoginRequestInput, cap: RequestCap): Promise<OpenedRequest | 'capped'>;
  async openLogin(input: LoginRequestInput, cap?: RequestCap): Promise<OpenedRequest | 'capped'> {
    const { choices, match } = numberChoices();
    return this.open(input, { type: 'login', protocol: 'web', choices, matchNumber: match }, cap);
  }

  /**
   * Opens a web sign-in request with a push code: the device shows six digits and a "Yes"; the
   * sign-in page shows none, the person types them there (approveByCode) or taps Yes on the device.
   */
  async openLoginCode(input: LoginRequestInput, cap: RequestCap): Promise<OpenedRequest | 'capped'> {
    const code = String(randomInt(0, 1_000_000)).padStart(6, '0');
    return this.open(input, { type: 'login', protocol: 'web', code }, cap);
  }

  /**
   * The code typed on the sign-in page: right, it approves the request as the device's Yes would
   * (the person read it off that device); wrong, nothing changes (the caller counts the attempt).
   */
  async approveByCode(id: string, user: string, typed: string): Promise<'approved' | 'wrong' | 'gone'> {
    const current = await this.get(id);
    if (!current || current.user !== user || current.status !== 'pending' || current.code === undefined) return 'gone';
    if (!/^[0-9]{6}$/.test(typed) || !timingSafeEqual(Buffer.from(typed), Buffer.from(current.code))) return 'wrong';
    const outcome = await this.decide(current.deviceId, id, 'approve');
    return outcome.status === 'approved' ? 'approved' : 'gone';
  }

  private async open(
    input: LoginRequestInput,
    kind: Pick<RequestRecord, 'type' | 'protocol'> & Partial<Pick<RequestRecord, 'choices' | 'matchNumber' | 'code'>>,
    cap?: RequestCap,
  ): Promise<OpenedRequest | 'capped'> {
    const now = this.clock.now();
    // Cleaned once, here, so that every channel (device API, event stream, webhook, FCM) shows the same.
    const clientName = cleanClientName(input.clientName);
    const candidate: RequestRecord = {
      id: newRequestId(),
      ...kind,
      user: input.user,
      deviceId: input.device.deviceId,
      clientIp: input.clientIp,
      ...(clientName ? { clientName } : {}),
      createdAt: now,
      expiresAt: now + this.settings.requestTtlMs,
      status: 'pending',
    };
    const result = await this.store.createRequest(candidate, now, cap);
    if (result.request === null) return 'capped';
    const log = { user: input.user, clientIp: input.clientIp, protocol: kind.protocol, type: kind.type, requestId: result.request.id };
    if (result.created) {
      this.logger.info({ event: 'request.opened', ...log }, 'approval request opened');
      await this.store.appendEvent({ type: 'request.opened', request: result.request }, now, this.eventRetentionMs);
      this.push(result.request, input.device);
    } else {
      this.logger.info({ event: 'request.joined', ...log }, 'joined pending approval request');
    }
    return { request: result.request, created: result.created };
  }

  /** The request, decided or not (a sign-in page following its login request, a connection's earlier
   * hold), or null when unknown or expired. */
  get(id: string): Promise<RequestRecord | null> {
    return this.store.getRequest(id, this.clock.now());
  }

  /** The user's recently decided or expired requests, newest first. */
  async recent(user: string): Promise<RecentRequest[]> {
    const items = await this.store.readList(recentKey(user), this.clock.now());
    return items.map((s) => JSON.parse(s) as RecentRequest);
  }

  /** Best effort: the list is for the user's information, a failure must not undo a decision. */
  private async remember(request: RequestRecord): Promise<void> {
    const item: RecentRequest = {
      id: request.id,
      type: request.type,
      protocol: request.protocol,
      clientIp: request.clientIp,
      ...(request.clientName ? { clientName: request.clientName } : {}),
      createdAt: request.createdAt,
      status: request.status,
      ...(request.decidedAt !== undefined ? { decidedAt: request.decidedAt } : {}),
    };
    try {
      await this.store.pushToList(recentKey(request.user), JSON.stringify(item), RECENT_MAX, RECENT_TTL_MS, this.clock.now());
    } catch (err) {
      this.logger.warn({ requestId: request.id, user: request.user, err: String(err) }, 'could not record the request in the recent list');
    }
  }

  /** Sends to every notifier without holding the caller; failures are logged, never thrown. */
  private push(request: RequestRecord, device: DeviceRecord): void {
    for (const n of this.notifiers) {
      send(() => n.requestOpened(request, device)).then(
        (outcome) => {
          if (outcome !== 'skipped') this.logger.info({ event: 'request.pushed', requestId: request.id, user: request.user, via: n.name }, 'request pushed');
        },
        (err: unknown) => this.pushFailed(n.name, request, device, err, 'push failed'),
      );
    }
  }

  /** Tells the notifiers about a request that was decided or expired, on this instance. */
  private settle(request: RequestRecord, reported = false): void {
    void this.store
      .getDevice(request.deviceId)
      .catch(() => null)
      .then((device) => {
        for (const n of this.notifiers) {
          send(() => n.requestSettled(request, device)).catch((err: unknown) => this.pushFailed(n.name, request, device, err, 'settle push failed'));
          const report = n.requestReported?.bind(n);
          if (reported && report) send(() => report(request, device)).catch((err: unknown) => this.pushFailed(n.name, request, device, err, 'report push failed'));
        }
      });
  }

  private pushFailed(via: string, request: RequestRecord, device: DeviceRecord | null, err: unknown, msg: string): void {
    if (err instanceof PushTokenRejectedError) {
      void this.dropPushToken(device?.deviceId ?? request.deviceId, request.user, err, via);
      return;
    }
    if (err instanceof PushSubscriptionGoneError) {
      void this.dropWebPush(device?.deviceId ?? request.deviceId, request.user, err, via);
      return;
    }
    this.logger.warn({ event: 'request.push-failed', requestId: request.id, user: request.user, via, err: String(err) }, msg);
  }

  /** Only the token that was refused: the app may have registered a new one since the push left. */
  private async dropPushToken(deviceId: string, user: string, err: PushTokenRejectedError, via: string): Promise<void> {
    try {
      const current = await this.store.getDevice(deviceId);
      if (!current || current.pushToken !== err.token) return;
      await this.store.setPushToken(deviceId, null, null);
      this.logger.warn(
        { event: 'device.push-token', action: 'dropped', user, deviceId, via, reason: err.reason },
        `${via} no longer accepts the device's push token; it was dropped until the app registers a new one`,
      );
    } catch (e) {
      this.logger.warn({ event: 'device.push-token', action: 'drop-failed', user, deviceId, via, err: String(e) }, 'could not drop a rejected push token');
    }
  }

  /** Only the subscription that was refused: the app may have subscribed again since the push left. */
  private async dropWebPush(deviceId: string, user: string, err: PushSubscriptionGoneError, via: string): Promise<void> {
    try {
      const current = await this.store.getDevice(deviceId);
      if (!current || current.webPush?.endpoint !== err.endpoint) return;
      await this.store.setWebPush(deviceId, null);
      this.logger.warn(
        { event: 'device.push-token', action: 'dropped', user, deviceId, via, reason: err.reason },
        `${via}: the push service no longer knows the device's subscription; it was dropped until the app subscribes again`,
      );
    } catch (e) {
      this.logger.warn({ event: 'device.push-token', action: 'drop-failed', user, deviceId, via, err: String(e) }, 'could not drop a gone push subscription');
    }
  }

  listPending(deviceId: string): Promise<RequestRecord[]> {
    return this.store.listPendingRequests(deviceId, this.clock.now());
  }

  /** The device answers a request. Only the device it was addressed to may answer it. */
  async decide(deviceId: string, id: string, decision: Decision, number?: number): Promise<DecideOutcome> {
    const now = this.clock.now();
    const current = await this.store.getRequest(id, now);
    // An expired request is gone as far as the device is concerned; only a lagging clock still sees it.
    if (!current || current.deviceId !== deviceId || current.status === 'expired') return { status: 'not-found' };
    if (current.status !== 'pending') return { status: 'already-decided', request: current };
    let verdict: 'approved' | 'denied' = decision === 'approve' ? 'approved' : 'denied';
    if (decision === 'approve' && current.choices && current.choices.length > 0 && (number === undefined || number !== current.matchNumber)) {
      // A sign-in whose number was picked wrong is denied: the person on the phone is not the one
      // at the page (or was fooled into tapping). No number at all is an app that did not show the
      // choices: refused, and the request stays open, as do other requests.
      if (current.type !== 'login' || number === undefined) return { status: 'wrong-number' };
      verdict = 'denied';
      this.logger.warn({ event: 'request.wrong-number', requestId: id, user: current.user, clientIp: current.clientIp }, 'wrong number picked: sign-in denied');
    }
    const result = await this.store.decideRequest(id, verdict, now);
    if (result.status !== 'ok') return result;
    const request = result.request;
    const reported = decision === 'report';
    // The approval (or the cool-down) is written before the decision is published, so a released
    // login, or its retry, always finds it.
    if (request.status === 'approved' && request.type === 'connection') await this.approvals.grant(request);
    let cooldown = null;
    if (request.status === 'denied') {
      cooldown = await this.cooldowns.start(request.user, request.clientIp, reported ? 'report' : 'deny');
      // Whatever this address was let in for before, the owner just said it is not theirs.
      if (reported) await this.approvals.revoke(request.user, request.clientIp);
    }
    await this.store.appendEvent({ type: reported ? 'request.reported' : 'request.decided', request }, now, this.eventRetentionMs);
    this.logger.info(
      {
        event: reported ? 'request.reported' : request.status === 'approved' ? 'request.approved' : 'request.denied',
        requestId: id,
        user: request.user,
        clientIp: request.clientIp,
        ...(cooldown ? { cooldownUntil: new Date(cooldown.until).toISOString() } : {}),
      },
      reported ? 'request reported as not the owner' : `request ${request.status}`,
    );
    this.settle(request, reported);
    await this.store.touchDevice(deviceId, now).catch((err: unknown) => this.logger.warn({ deviceId, err: String(err) }, 'could not record device use'));
    await this.remember(request);
    return { status: request.status === 'approved' ? 'approved' : 'denied', request };
  }

  /**
   * The sign-in page gave up waiting (Cancel, or a new sign-in from the same browser): the pending
   * login request is denied, so the phone clears it and a tap on it can approve nothing.
   */
  async withdrawLogin(id: string, user: string): Promise<boolean> {
    const now = this.clock.now();
    const current = await this.store.getRequest(id, now);
    if (!current || current.type !== 'login' || current.user !== user || current.status !== 'pending') return false;
    const result = await this.store.decideRequest(id, 'denied', now);
    if (result.status !== 'ok') return false;
    await this.store.appendEvent({ type: 'request.decided', request: result.request }, now, this.eventRetentionMs);
    this.logger.info({ event: 'request.withdrawn', requestId: id, user, clientIp: current.clientIp }, 'sign-in request withdrawn by the sign-in page');
    this.settle(result.request);
    await this.remember(result.request);
    return true;
  }

  /** Logs a notice for the device (and publishes it): its event stream sends it as `event: notice`. */
  async logNotice(deviceId: string, notice: DeviceNotice): Promise<void> {
    await this.store.appendEvent({ type: 'device.notice', deviceId, notice }, this.clock.now(), this.eventRetentionMs);
  }

  /** The device's logged events after afterId (see Store.readEvents). */
  eventsSince(deviceId: string, afterId: number): Promise<EventLogRead> {
    return this.store.readEvents(deviceId, afterId, this.clock.now(), this.eventRetentionMs);
  }

  /** Calls handler for each logged event (a request's, or a device notice) published on any
   * instance, until unsubscribed: a wake-up for readers of the event logs (the device event
   * stream), which stay the source of truth. */
  subscribe(handler: (event: StoreEvent) => void): Unsubscribe {
    return this.store.subscribe((event) => {
      if (event.type !== 'pairing.link') handler(event);
    });
  }

  /** Where a reader of the current state (the pending list read after this) continues in the logs. */
  eventCursor(): Promise<number> {
    return this.store.lastEventId();
  }

  /**
   * One pass of the expiry sweep: claims the requests that expired unanswered (each one on exactly
   * one instance, by the store) and settles them, which the device and the webhook hear about.
   * Returns how many it claimed.
   */
  async sweepExpired(): Promise<number> {
    let total = 0;
    for (let batch = 0; batch < SWEEP_MAX_BATCHES; batch++) {
      const expired: LoggedRequestEvent[] = await this.store.expireRequests(this.clock.now(), SWEEP_BATCH, this.eventRetentionMs);
      for (const e of expired) {
        const r = e.request;
        this.logger.info({ event: 'request.expired', requestId: r.id, user: r.user, clientIp: r.clientIp }, 'request expired unanswered');
        this.settle(r);
        await this.remember(r);
      }
      total += expired.length;
      if (expired.length < SWEEP_BATCH) break;
    }
    return total;
  }

  /**
   * Runs sweepExpired on an interval until the returned function is called. Every instance runs it
   * (main.ts starts and stops it, for the whole process); the store makes each expiry count once.
   */
  startExpirySweeper(): () => void {
    if (this.sweeper) throw new Error('the expiry sweep is already running: one owner starts and stops it');
    const sweeper: { timer: Timer | null; running: boolean } = { timer: null, running: false };
    // A sweep never keeps the process alive on its own.
    sweeper.timer = this.scheduler.setInterval(() => this.sweepTick(sweeper), this.settings.sweepIntervalMs ?? DEFAULT_SWEEP_INTERVAL_MS, { background: true });
    this.sweeper = sweeper;
    return () => {
      sweeper.timer?.clear();
      if (this.sweeper === sweeper) this.sweeper = null;
    };
  }

  private sweepTick(sweeper: { running: boolean }): void {
    // A slow store must not pile sweeps up.
    if (sweeper.running) return;
    sweeper.running = true;
    this.sweepExpired()
      .catch((err: unknown) => this.logger.warn({ event: 'request.sweep-failed', err: String(err) }, 'expiry sweep failed; retrying'))
      .finally(() => {
        sweeper.running = false;
      });
  }

  /**
   * Waits up to holdMs for the request to be decided, on any instance. Listens to the store's
   * events and re-reads the request now and then, in case an event was lost in a reconnect.
   */
  waitForDecision(requestId: string, holdMs: number, signal?: AbortSignal): Promise<WaitOutcome> {
    if (signal?.aborted) return Promise.resolve('aborted');
    return new Promise<WaitOutcome>((resolve) => {
      let done = false;
      const finish = (outcome: WaitOutcome) => {
        if (done) return;
        done = true;
        hold.clear();
        recheck.clear();
        unsubscribe();
        resolve(outcome);
      };
      const fromStatus = (status: RequestRecord['status']) => {
        switch (status) {
          case 'approved':
          case 'denied':
            finish(status);
            break;
          case 'expired':
            // Nothing can be tapped any more: let the client retry (and open a new request) now.
            finish('timeout');
            break;
          case 'pending':
            break;
        }
      };
      const unsubscribe = this.store.subscribe((event) => {
        if (event.type === 'device.notice' || event.type === 'pairing.link' || event.type === 'request.opened') return;
        if (event.request.id === requestId) fromStatus(event.request.status);
      });
      const check = () => {
        this.store.getRequest(requestId, this.clock.now()).then(
          (r) => r && fromStatus(r.status),
          () => undefined, // the store is down: the timeout answers, and that is a refusal
        );
      };
      // The hold ends at holdMs or when the client leaves (see `deadline`: not AbortSignal.any).
      const hold = deadline(this.scheduler, holdMs, signal);
      hold.signal.addEventListener('abort', () => finish(hold.expired ? 'timeout' : 'aborted'), { once: true });
      const recheck = this.scheduler.setInterval(check, this.settings.recheckMs ?? 2000);
      check();
    });
  }
}

/** Runs a notifier call so that one that throws synchronously cannot reach the login either. */
function send(call: () => Promise<NotifyOutcome>): Promise<NotifyOutcome> {
  try {
    return Promise.resolve(call());
  } catch (err) {
    return Promise.reject(err);
  }
}
