import type { Logger } from '../log/logger.js';
import type { Store } from './ports/store.js';
import type { Clock } from './clock.js';
import { DeviceAuthLimiter, type DeviceAuthLimitSettings } from './device-auth-limiter.js';
import type { DeviceRecord, WebPushSubscription } from './types.js';
import { deviceIdOfToken, digestsEqual, hashToken, newDeviceToken } from './tokens.js';

export type BindResult = { status: 'bound'; device: DeviceRecord; token: string } | { status: 'exists'; device: DeviceRecord };

/** Binding, clearing and authenticating the one device a user may have. */
export class DeviceService {
  constructor(
    private readonly store: Store,
    private readonly clock: Clock,
    private readonly logger: Logger,
  ) {}

  /** Binds a new device for the user. The token is returned once and only its hash is stored. */
  async bind(user: string, name: string, replace: boolean): Promise<BindResult> {
    const { deviceId, token } = newDeviceToken();
    const device: DeviceRecord = { deviceId, user, name, tokenHash: hashToken(token), createdAt: this.clock.now() };
    const outcome = await this.store.putDevice(device, replace);
    if (outcome === 'exists') {
      const existing = await this.store.getDeviceByUser(user);
      if (existing) return { status: 'exists', device: existing };
      // Removed between the two calls: try once more rather than report a device that is gone.
      return this.bind(user, name, replace);
    }
    this.logger.info({ event: 'device.bound', user, deviceId, replaced: replace }, 'device bound');
    return { status: 'bound', device, token };
  }

  async remove(user: string): Promise<DeviceRecord | null> {
    const removed = await this.store.removeDevice(user);
    if (removed) this.logger.info({ event: 'device.removed', user, deviceId: removed.deviceId }, 'device removed');
    return removed;
  }

  /** The user's bound device, or null. */
  ofUser(user: string): Promise<DeviceRecord | null> {
    return this.store.getDeviceByUser(user);
  }

  /** The device with this id, or null once it was cleared or replaced. */
  get(deviceId: string): Promise<DeviceRecord | null> {
    return this.store.getDevice(deviceId);
  }

  /** The device API's brake on bad bearer tokens, counted in this service's store across instances. */
  authFailureLimiter(settings: DeviceAuthLimitSettings, clock: Clock = this.clock): DeviceAuthLimiter {
    return new DeviceAuthLimiter(this.store, clock, settings);
  }

  /** The device a bearer token belongs to, or null. Compares digests in constant time. */
  async authenticate(token: string): Promise<DeviceRecord | null> {
    const deviceId = deviceIdOfToken(token);
    if (!deviceId) return null;
    const device = await this.store.getDevice(deviceId);
    const presented = hashToken(token);
    // Compare even when the device is unknown so timing does not tell which ids exist.
    const ok = digestsEqual(presented, device?.tokenHash ?? '0'.repeat(64));
    return ok && device ? device : null;
  }

  async setPushToken(device: DeviceRecord, token: string, platform: 'android' | 'ios'): Promise<void> {
    await this.store.setPushToken(device.deviceId, token, platform);
    this.logger.info({ event: 'device.push-token', user: device.user, deviceId: device.deviceId, platform }, 'push token registered');
  }

  /** Registers (or replaces) the web app's push subscription; the endpoint's host is logged, never its path. */
  async setWebPush(device: DeviceRecord, subscription: WebPushSubscription): Promise<void> {
    await this.store.setWebPush(device.deviceId, subscription);
    this.logger.info(
      { event: 'device.push-subscription', user: device.user, deviceId: device.deviceId, pushService: new URL(subscription.endpoint).host },
      'web push subscription registered',
    );
  }
}
