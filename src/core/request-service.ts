import type { Logger } from '../log/logger.js';
import { PushSubscriptionGoneError, PushTokenRejectedError, type Notifier, type NotifyOutcome } from '../push/notifier.js';
import type { EventLogRead, LoggedEvent, Store } from '../stores/store.js';
import type { ApprovalService } from './approval-service.js';
import type { Clock } from './clock.js';
import type { DeviceRecord, Protocol, RequestRecord } from './types.js';
import { newRequestId } from './tokens.js';

export type Decision = 'approve' | 'deny';
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

export interface ConnectionRequestInput {
  user: string;
  device: DeviceRecord;
  protocol: Protocol;
  clientIp: string;
  clientName?: string;
}

/** Pending requests: opening or joining one, answering it, and waiting for the answer. */
export class RequestService {
  private sweeper: { timer: NodeJS.Timeout; users: number; running: boolean } | null = null;

  constructor(
    private readonly store: Store,
    private readonly clock: Clock,
    private readonly approvals: ApprovalService,
    private readonly notifiers: readonly Notifier[],
    private readonly logger: Logger,
    private readonly settings: RequestSettings,
  ) {}

  /** How long the device event logs keep an event: a reconnecting stream replays this far back. */
  get eventRetentionMs(): number {
    return this.settings.requestTtlMs + EVENT_RETENTION_GRACE_MS;
  }

  /** Opens a connection request, or joins the pending one of the same user and client IP. */
  async openConnection(input: ConnectionRequestInput): Promise<{ request: RequestRecord; created: boolean }> {
    const now = this.clock.now();
    const candidate: RequestRecord = {
      id: newRequestId(),
      type: 'connection',
      user: input.user,
      deviceId: input.device.deviceId,
      protocol: input.protocol,
      clientIp: input.clientIp,
      ...(input.clientName ? { clientName: input.clientName } : {}),
      createdAt: now,
      expiresAt: now + this.settings.requestTtlMs,
      status: 'pending',
    };
    const result = await this.store.createRequest(candidate, now);
    const log = { user: input.user, clientIp: input.clientIp, protocol: input.protocol, requestId: result.request.id };
    if (result.created) {
      this.logger.info({ event: 'request.opened', ...log }, 'approval request opened');
      await this.store.appendEvent({ type: 'request.opened', request: result.request }, now, this.eventRetentionMs);
      this.push(result.request, input.device);
    } else {
      this.logger.info({ event: 'request.joined', ...log }, 'joined pending approval request');
    }
    return { request: result.request, created: result.created };
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
  private settle(request: RequestRecord): void {
    void this.store
      .getDevice(request.deviceId)
      .catch(() => null)
      .then((device) => {
        for (const n of this.notifiers) {
          send(() => n.requestSettled(request, device)).catch((err: unknown) => this.pushFailed(n.name, request, device, err, 'settle push failed'));
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
    if (decision === 'approve' && current.choices && current.choices.length > 0 && (number === undefined || number !== current.matchNumber)) {
      // Number matching: approving with the wrong (or no) number is refused, the request stays open.
      return { status: 'wrong-number' };
    }
    const result = await this.store.decideRequest(id, decision === 'approve' ? 'approved' : 'denied', now);
    if (result.status !== 'ok') return result;
    const request = result.request;
    // The approval is written before the decision is published, so a released login always finds it.
    if (request.status === 'approved' && request.type === 'connection') await this.approvals.grant(request);
    await this.store.appendEvent({ type: 'request.decided', request }, now, this.eventRetentionMs);
    this.logger.info(
      { event: request.status === 'approved' ? 'request.approved' : 'request.denied', requestId: id, user: request.user, clientIp: request.clientIp },
      `request ${request.status}`,
    );
    this.settle(request);
    return { status: request.status === 'approved' ? 'approved' : 'denied', request };
  }

  /** The device's logged events after afterId (see Store.readEvents). */
  eventsSince(deviceId: string, afterId: number): Promise<EventLogRead> {
    return this.store.readEvents(deviceId, afterId, this.clock.now(), this.eventRetentionMs);
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
      const expired: LoggedEvent[] = await this.store.expireRequests(this.clock.now(), SWEEP_BATCH, this.eventRetentionMs);
      for (const e of expired) {
        const r = e.request;
        this.logger.info({ event: 'request.expired', requestId: r.id, user: r.user, clientIp: r.clientIp }, 'request expired unanswered');
        this.settle(r);
      }
      total += expired.length;
      if (expired.length < SWEEP_BATCH) break;
    }
    return total;
  }

  /**
   * Runs sweepExpired on an interval until the returned function is called. Every instance runs it;
   * the store makes each expiry count once. Shared: a second caller joins the running sweep.
   */
  startExpirySweeper(): () => void {
    if (!this.sweeper) {
      const sweeper = { timer: setInterval(() => this.sweepTick(), this.settings.sweepIntervalMs ?? DEFAULT_SWEEP_INTERVAL_MS), users: 0, running: false };
      // A sweep never keeps the process alive on its own.
      sweeper.timer.unref();
      this.sweeper = sweeper;
    }
    const sweeper = this.sweeper;
    sweeper.users++;
    let stopped = false;
    return () => {
      if (stopped) return;
      stopped = true;
      if (--sweeper.users > 0) return;
      clearInterval(sweeper.timer);
      if (this.sweeper === sweeper) this.sweeper = null;
    };
  }

  private sweepTick(): void {
    const sweeper = this.sweeper;
    // A slow store must not pile sweeps up.
    if (!sweeper || sweeper.running) return;
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
    return new Promise<WaitOutcome>((resolve) => {
      let done = false;
      const finish = (outcome: WaitOutcome) => {
        if (done) return;
        done = true;
        clearTimeout(timer);
        clearInterval(recheck);
        unsubscribe();
        signal?.removeEventListener('abort', onAbort);
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
        if (event.type !== 'request.opened' && event.request.id === requestId) fromStatus(event.request.status);
      });
      const check = () => {
        this.store.getRequest(requestId, this.clock.now()).then(
          (r) => r && fromStatus(r.status),
          () => undefined, // the store is down: the timeout answers, and that is a refusal
        );
      };
      const onAbort = () => finish('aborted');
      const timer = setTimeout(() => finish('timeout'), holdMs);
      const recheck = setInterval(check, this.settings.recheckMs ?? 2000);
      signal?.addEventListener('abort', onAbort);
      if (signal?.aborted) finish('aborted');
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
