import type { Logger } from '../log/logger.js';
import type { DeviceNotice, Notifier } from './ports/notifier.js';
import type { Store } from './ports/store.js';
import type { Clock } from './clock.js';

/** Where the device's event stream finds its notices (RequestService.logNotice). */
export interface NoticeLog {
  logNotice(deviceId: string, notice: DeviceNotice): Promise<unknown>;
}

/**
 * Tells the user's bound device, through every notifier that can carry a notice and its event
 * stream, that a recovery code was used. Sends are started, not awaited: the sign-in that used the
 * code does not wait for them.
 */
export function recoveryNotice(store: Store, clock: Clock, notifiers: readonly Notifier[], logger: Logger, log: NoticeLog): (user: string, left: number) => Promise<void> {
  return async (user, left) => {
    const device = await store.getDeviceByUser(user);
    if (!device) return;
    const notice: DeviceNotice = { kind: 'recovery-code-used', user, left, at: clock.now() };
    const failed = (via: string) => (err: unknown) =>
      logger.warn({ event: 'recovery.notice-failed', user, via, err: String(err) }, 'could not tell the device that a recovery code was used');
    log.logNotice(device.deviceId, notice).catch(failed('event-stream'));
    for (const n of notifiers) {
      if (!n.deviceNotice) continue;
      n.deviceNotice(device, notice).catch(failed(n.name));
    }
  };
}
