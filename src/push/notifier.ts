import type { DeviceRecord, RequestRecord } from '../core/types.js';

/** One way of reaching the device (log, webhook, FCM, ...). Sends must not be awaited by a login. */
export interface Notifier {
  readonly name: string;
  /** A request was opened for the device. */
  requestOpened(request: RequestRecord, device: DeviceRecord): Promise<void>;
  /** A request was approved or denied (elsewhere), so the device can clear it. */
  requestSettled(request: RequestRecord, device: DeviceRecord | null): Promise<void>;
  close?(): Promise<void>;
}
