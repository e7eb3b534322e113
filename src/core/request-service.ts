import type { Logger } from '../log/logger.js';
import type { Notifier } from '../push/notifier.js';
import type { Store } from '../stores/store.js';
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

export interface ConnectionRequestInput {
  user: string;
  device: DeviceRecord;
  protocol: Protocol;
  clientIp: string;
  clientName?: string;
}

/** Pending requests: opening or joining one, answering it, and waiting for the answer. */
export class RequestService {
  constructor(
    private readonly store: Store,
    private readonly clock: Clock,
    private readonly approvals: ApprovalService,
    private readonly notifiers: readonly Notifier[],
    private readonly logger: Logger,
    private readonly settings: { requestTtlMs: number; recheckMs?: number },
  ) {}

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
      await this.store.publish({ type: 'request.opened', request: result.request });
      this.push(result.request, input.device);
    } else {
      this.logger.info({ event: 'request.joined', ...log }, 'joined pending approval request');
    }
    return { request: result.request, created: result.created };
  }

  /** Sends to every notifier without holding the caller; failures are logged, never thrown. */
  private push(request: RequestRecord, device: DeviceRecord): void {
    for (const n of this.notifiers) {
      n.requestOpened(request, device).then(
        () => this.logger.info({ event: 'request.pushed', requestId: request.id, user: request.user, via: n.name }, 'request pushed'),
        (err: unknown) =>
          this.logger.warn({ event: 'request.push-failed', requestId: request.id, user: request.user, via: n.name, err: String(err) }, 'push failed'),
      );
    }
  }

  private settle(request: RequestRecord): void {
    void this.store
      .getDevice(request.deviceId)
      .catch(() => null)
      .then((device) => {
        for (const n of this.notifiers) {
          n.requestSettled(request, device).catch((err: unknown) =>
            this.logger.warn({ event: 'request.push-failed', requestId: request.id, via: n.name, err: String(err) }, 'settle push failed'),
          );
        }
      });
  }

  listPending(deviceId: string): Promise<RequestRecord[]> {
    return this.store.listPendingRequests(deviceId, this.clock.now());
  }

  /** The device answers a request. Only the device it was addressed to may answer it. */
  async decide(deviceId: string, id: string, decision: Decision, number?: number): Promise<DecideOutcome> {
    const now = this.clock.now();
    const current = await this.store.getRequest(id, now);
    if (!current || current.deviceId !== deviceId) return { status: 'not-found' };
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
    await this.store.publish({ type: 'request.decided', request });
    this.logger.info(
      { event: request.status === 'approved' ? 'request.approved' : 'request.denied', requestId: id, user: request.user, clientIp: request.clientIp },
      `request ${request.status}`,
    );
    this.settle(request);
    return { status: request.status === 'approved' ? 'approved' : 'denied', request };
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
        if (status === 'approved') finish('approved');
        else if (status === 'denied') finish('denied');
      };
      const unsubscribe = this.store.subscribe((event) => {
        if (event.type === 'request.decided' && event.request.id === requestId) fromStatus(event.request.status);
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
