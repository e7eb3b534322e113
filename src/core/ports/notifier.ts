import type { DeviceNotice, DeviceRecord, RequestRecord } from '../types.js';

export type { DeviceNotice };

/** 'skipped': nothing was sent, e.g. the device has no push token; so the caller does not log a push. */
export type NotifyOutcome = void | 'skipped';

/** One way of reaching the device (log, webhook, FCM, ...). Sends must not be awaited by a login. */
export interface Notifier {
  readonly name: string;
  /** A request was opened for the device. */
  requestOpened(request: RequestRecord, device: DeviceRecord): Promise<NotifyOutcome>;
  /** A request was approved, denied or expired, so the device can clear it. */
  requestSettled(request: RequestRecord, device: DeviceRecord | null): Promise<NotifyOutcome>;
  /** After requestSettled, when the device answered "this wasn't me" (the request is denied). */
  requestReported?(request: RequestRecord, device: DeviceRecord | null): Promise<NotifyOutcome>;
  /** The user (or an admin) cleared this device: tell it, so the app shows that it is unbound. */
  deviceRemoved?(device: DeviceRecord): Promise<NotifyOutcome>;
  /** A notice for the device to show (see DeviceNotice). */
  deviceNotice?(device: DeviceRecord, notice: DeviceNotice): Promise<NotifyOutcome>;
  close?(): Promise<void>;
}

/**
 * A push service said the device's token is no longer valid (the app was uninstalled, or the token
 * rotated). The core drops the token from the device; the app registers a new one when it runs.
 * The token is a property, never part of the message, so that logging the error cannot leak it.
 */
export class PushTokenRejectedError extends Error {
  constructor(
    readonly token: string,
    readonly reason: string,
  ) {
    super(`push token rejected: ${reason}`);
    this.name = 'PushTokenRejectedError';
  }
}

/**
 * A Web Push service answered 404 or 410 for the subscription: the browser dropped it (the app was
 * removed, notifications were turned off, or it expired). The core drops it from the device; the
 * app subscribes again when it next runs. The endpoint is a property only, as with the token above.
 */
export class PushSubscriptionGoneError extends Error {
  constructor(
    readonly endpoint: string,
    readonly reason: string,
  ) {
    super(`push subscription gone: ${reason}`);
    this.name = 'PushSubscriptionGoneError';
  }
}
