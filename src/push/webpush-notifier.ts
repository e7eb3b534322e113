import type { Agent } from 'node:https';
import webpush, { WebPushError } from 'web-push';
import type { DeviceRecord, RequestRecord, WebPushSubscription } from '../core/types.js';
import type { Logger } from '../log/logger.js';
import { toApiRequest, type ApiRequest } from '../core/request-view.js';
import { RetryableError, withRetries, type RetryOptions } from './backoff.js';
import { DeliveryState, type RetrySettings } from './delivery-state.js';
import { PushSubscriptionGoneError, type DeviceNotice, type Notifier, type NotifyOutcome } from '../core/ports/notifier.js';
import type { VapidKeys } from './vapid-keys.js';

export interface WebPushOptions extends RetrySettings {
  keys: VapidKeys;
  /** RFC 8292 "sub": mailto: or https: contact for the push service. */
  subject: string;
  /** Socket timeout per attempt [10000]. */
  timeoutMs?: number;
  /** Carries every request to the push service (tests trust a local stand-in with it). */
  agent?: Agent;
}

/** What the service worker receives (decrypted by the browser). */
export type WebPushPayload =
  | { kind: 'request'; request: ApiRequest; text: string }
  | { kind: 'close'; id: string; status: RequestRecord['status'] }
  /** The device was cleared on the server: the app forgets its token and shows that it is unbound. */
  | { kind: 'unbound'; deviceId: string }
  /** Something to show that needs no answer (a recovery code was used). */
  | { kind: 'notice'; notice: DeviceNotice };

/** A close message is useful for as long as the notification it closes may still be on screen. */
const CLOSE_TTL_S = 12 * 3600;

/** "Thunderbird on IMAP from 203.0.113.7": the English line; the app words it in the user's language. */
export function describeRequest(r: Pick<RequestRecord, 'type' | 'protocol' | 'clientIp' | 'clientName'>): string {
  if (r.type === 'login') return `Web sign-in from ${r.clientIp}`;
  const what = r.protocol.toUpperCase();
  return r.clientName ? `${r.clientName} on ${what} from ${r.clientIp}` : `A mail client on ${what} from ${r.clientIp}`;
}

/**
 * Web Push (RFC 8030, payload encrypted per RFC 8291 aes128gcm, VAPID per RFC 8292) to the web
 * authenticator app's subscription: a notification when a request opens (TTL until it expires,
 * urgency high) and a "close" message when it is settled. Both use the request id as Topic, so a
 * close replaces an undelivered request message at a push service that holds it for an offline phone.
 * The endpoint is a capability URL: it never reaches a log line or an error message.
 */
export class WebPushNotifier implements Notifier {
  readonly name = 'webpush';
  private readonly state: DeliveryState;

  constructor(
    private readonly opts: WebPushOptions,
    private readonly logger: Logger,
  ) {
    this.state = new DeliveryState(this.name, opts);
  }

  async requestOpened(request: RequestRecord, device: DeviceRecord): Promise<NotifyOutcome> {
    const sub = device.webPush;
    if (!sub) return 'skipped';
    const payload: WebPushPayload = { kind: 'request', request: toApiRequest(request), text: describeRequest(request) };
    return this.deliver(request, sub, payload, 'request');
  }

  /** Sent to the subscription the removed device had; the record is already gone from the store. */
  async deviceRemoved(device: DeviceRecord): Promise<NotifyOutcome> {
    const sub = device.webPush;
    if (!sub) return 'skipped';
    const body = JSON.stringify({ kind: 'unbound', deviceId: device.deviceId } satisfies WebPushPayload);
    return withRetries(this.retryOptions({ deviceId: device.deviceId, kind: 'unbound' }), async () => {
      // Topic "unbound": a second clear replaces the first at a push service holding it for an offline phone.
      await this.attempt(sub, body, CLOSE_TTL_S, 'normal', 'unbound');
    });
  }

  async deviceNotice(device: DeviceRecord, notice: DeviceNotice): Promise<NotifyOutcome> {
    const sub = device.webPush;
    if (!sub) return 'skipped';
    const body = JSON.stringify({ kind: 'notice', notice } satisfies WebPushPayload);
    return withRetries(this.retryOptions({ deviceId: device.deviceId, kind: notice.kind }), async () => {
      // Urgent: it may mean someone else is in the account. Each notice is its own (no Topic to replace).
      await this.attempt(sub, body, CLOSE_TTL_S, 'high', undefined);
    });
  }

  async requestSettled(request: RequestRecord, device: DeviceRecord | null): Promise<NotifyOutcome> {
    this.state.settle(request);
    const sub = device?.webPush;
    if (!sub) return 'skipped';
    await this.deliver(request, sub, { kind: 'close', id: request.id, status: request.status }, 'close');
  }

  async close(): Promise<void> {
    this.state.close();
  }

  private async deliver(request: RequestRecord, sub: WebPushSubscription, payload: WebPushPayload, kind: 'request' | 'close'): Promise<NotifyOutcome> {
    const body = JSON.stringify(payload);
    return withRetries(
      this.retryOptions({ requestId: request.id, kind }),
      async (attempt, last): Promise<NotifyOutcome> => {
        // The TTL is worked out per attempt, so that it still ends when the request does.
        const ttl = kind === 'request' ? Math.floor((request.expiresAt - this.state.clock.now()) / 1000) : CLOSE_TTL_S;
        if (kind === 'request' && (ttl <= 0 || this.state.isSettled(request.id))) {
          if (attempt === 1) return 'skipped';
          throw new Error(`webpush: gave up on ${kind} after ${attempt - 1} attempt(s), it is no longer pending: ${last}`);
        }
        await this.attempt(sub, body, ttl, kind === 'request' ? 'high' : 'normal', request.id);
      },
    );
  }

  private retryOptions(log: Record<string, string>): RetryOptions {
    return this.state.retryOptions((attempt, waitMs, err) => this.logger.debug({ ...log, attempt, waitMs, err }, 'web push failed, retrying'));
  }

  private async attempt(sub: WebPushSubscription, body: string, ttl: number, urgency: 'high' | 'normal', topic: string | undefined): Promise<void> {
    try {
      await webpush.sendNotification(sub, body, {
        vapidDetails: { subject: this.opts.subject, publicKey: this.opts.keys.publicKey, privateKey: this.opts.keys.privateKey },
        TTL: ttl,
        urgency,
        ...(topic ? { topic } : {}),
        contentEncoding: 'aes128gcm',
        timeout: this.opts.timeoutMs ?? 10_000,
        ...(this.opts.agent ? { agent: this.opts.agent } : {}),
      });
    } catch (err) {
      if (err instanceof WebPushError) {
        const status = err.statusCode;
        if (status === 404 || status === 410) throw new PushSubscriptionGoneError(sub.endpoint, `HTTP ${status}`);
        if (status === 429 || status >= 500) throw new RetryableError(`HTTP ${status}`);
        throw new Error(`the push service refused the message: HTTP ${status}`);
      }
      // Network errors and timeouts; the message may name the host, never the path.
      const message = err instanceof Error ? err.message : String(err);
      throw new RetryableError(message.split(sub.endpoint).join('[endpoint]').slice(0, 300));
    }
  }
}
