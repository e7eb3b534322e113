import { createHmac, randomUUID } from 'node:crypto';
import { deadline, systemScheduler } from '../core/clock.js';
import type { DeviceRecord, RequestRecord, RequestStatus } from '../core/types.js';
import type { Logger } from '../log/logger.js';
import { toApiRequest, type ApiRequest } from '../core/request-view.js';
import { RetryableError, withRetries } from './backoff.js';
import { DeliveryState } from './delivery-state.js';
import type { DeviceNotice, Notifier } from '../core/ports/notifier.js';

export interface WebhookSettings {
  url: string;
  /** HMAC-SHA256 key shared with the receiver. */
  secret: string;
  /** Per attempt. */
  timeoutMs: number;
}

export interface WebhookOptions {
  /** The portal's public URL, passed on as `portalUrl`. */
  publicUrl?: string;
  /** Further attempts after the first fails with a network error, a timeout, 429 or 5xx [3]. */
  retries?: number;
  /** Wait before the first retry; doubles for each further one [500]. */
  backoffMs?: number;
}

export type WebhookEvent = 'request.opened' | 'request.settled' | 'request.reported';

/** The body POSTed when the device should be told something that is not a request (see DeviceNotice). */
export interface WebhookNoticePayload {
  /** recovery.used: a recovery code signed the user in on the portal. */
  event: 'recovery.used';
  notice: { user: string; left: number; at: string };
  device: { deviceId: string; name: string | null };
  portalUrl?: string;
  sentAt: string;
}

/** The JSON body POSTed to the webhook. */
export interface WebhookPayload {
  event: WebhookEvent;
  request: ApiRequest;
  /** On request.settled (and request.reported, always 'denied'): 'expired' when nobody answered before request.expiresAt. */
  status?: Exclude<RequestStatus, 'pending'>;
  device: { deviceId: string; name: string | null };
  portalUrl?: string;
  /** ISO 8601; when the event was produced (the same on every retry). */
  sentAt: string;
}

/**
 * `sha256=` + hex HMAC-SHA256(secret, `${timestamp}.${body}`): the X-Mailotp-Signature header.
 * The timestamp (unix seconds, X-Mailotp-Timestamp) is signed too, so that a receiver that rejects
 * old timestamps also rejects replays.
 */
export function signWebhook(secret: string, timestamp: number | string, body: string): string {
  return 'sha256=' + createHmac('sha256', secret).update(`${timestamp}.${body}`, 'utf8').digest('hex');
}


/**
 * Tells a webhook about every opened and settled request. Delivery is at least once: a receiver
 * can drop duplicates by X-Mailotp-Delivery, which stays the same across retries.
 */
export class WebhookNotifier implements Notifier {
  readonly name = 'webhook';
  private readonly state: DeliveryState;

  constructor(
    private readonly settings: WebhookSettings,
    private readonly logger: Logger,
    private readonly opts: WebhookOptions = {},
  ) {
    this.state = new DeliveryState(this.name, opts, 500);
  }

  async requestOpened(request: RequestRecord, device: DeviceRecord): Promise<void> {
    await this.deliver(this.payload('request.opened', request, { deviceId: device.deviceId, name: device.name }));
  }

  async requestSettled(request: RequestRecord, device: DeviceRecord | null): Promise<void> {
    // The device may have been removed since; the request still names it.
    const payload = this.payload('request.settled', request, { deviceId: request.deviceId, name: device?.name ?? null });
    if (request.status !== 'pending') payload.status = request.status;
    await this.deliver(payload);
  }

  /** Sent after request.settled when the device answered "this wasn't me". */
  async requestReported(request: RequestRecord, device: DeviceRecord | null): Promise<void> {
    const payload = this.payload('request.reported', request, { deviceId: request.deviceId, name: device?.name ?? null });
    if (request.status !== 'pending') payload.status = request.status;
    await this.deliver(payload);
  }

  async deviceNotice(device: DeviceRecord, notice: DeviceNotice): Promise<void> {
    await this.deliver({
      event: 'recovery.used',
      notice: { user: notice.user, left: notice.left, at: new Date(notice.at).toISOString() },
      device: { deviceId: device.deviceId, name: device.name },
      ...(this.opts.publicUrl ? { portalUrl: this.opts.publicUrl } : {}),
      sentAt: new Date().toISOString(),
    });
  }

  async close(): Promise<void> {
    this.state.close();
  }

  private payload(event: WebhookEvent, request: RequestRecord, device: WebhookPayload['device']): WebhookPayload {
    return {
      event,
      request: toApiRequest(request),
      device,
      ...(this.opts.publicUrl ? { portalUrl: this.opts.publicUrl } : {}),
      sentAt: new Date().toISOString(),
    };
  }

  private async deliver(payload: WebhookPayload | WebhookNoticePayload): Promise<void> {
    const body = JSON.stringify(payload);
    const deliveryId = randomUUID();
    await withRetries(
      // The URL may carry a secret path (many hook services do), so only the event is logged.
      this.state.retryOptions((attempt, waitMs, err) =>
        this.logger.debug({ event: payload.event, ...('request' in payload ? { requestId: payload.request.id } : {}), deliveryId, attempt, waitMs, err }, 'webhook attempt failed, retrying'),
      ),
      () => this.attempt(body, deliveryId),
    );
  }

  /** One POST. Resolves on 2xx; throws RetryableError when another attempt may succeed. */
  private async attempt(body: string, deliveryId: string): Promise<void> {
    const timestamp = Math.floor(Date.now() / 1000);
    let res: Response;
    // The POST ends at its deadline or when the notifier closes.
    const time = deadline(systemScheduler, this.settings.timeoutMs, this.state.signal);
    try {
      res = await fetch(this.settings.url, {
        method: 'POST',
        headers: {
          'Content-Type': 'application/json',
          'User-Agent': 'mailotp',
          'X-Mailotp-Timestamp': String(timestamp),
          'X-Mailotp-Signature': signWebhook(this.settings.secret, timestamp, body),
          'X-Mailotp-Delivery': deliveryId,
        },
        body,
        // A redirect would send the signed body somewhere nobody configured.
        redirect: 'manual',
        signal: time.signal,
      });
    } catch (err) {
      if (this.state.signal.aborted) throw new Error('webhook notifier closed');
      const message = time.expired ? `no answer within ${this.settings.timeoutMs}ms` : describeFetchError(err);
      throw new RetryableError(message);
    } finally {
      time.clear();
    }
    // Only the status matters; the body is dropped so the connection can be reused.
    await res.body?.cancel().catch(() => undefined);
    if (res.ok) return;
    const message = `HTTP ${res.status}`;
    if (res.status === 429 || res.status >= 500) throw new RetryableError(message);
    throw new Error(`webhook delivery refused: ${message}`);
  }


}

/** fetch's "fetch failed" says nothing; its cause (ECONNREFUSED, ENOTFOUND, ...) does. */
function describeFetchError(err: unknown): string {
  if (!(err instanceof Error)) return String(err);
  const cause = err.cause;
  if (cause && typeof cause === 'object') {
    const code = (cause as { code?: unknown }).code;
    if (typeof code === 'string') return `${err.message} (${code})`;
  }
  return err.message;
}
