import type { Logger } from '../log/logger.js';
import type { Store } from './ports/store.js';
import type { Clock } from './clock.js';
import type { DeviceRecord } from './types.js';

/** The admin's daemon-OTP policy (config daemonOtp.enabled, daemonOtp.enforce). */
export interface DaemonOtpPolicy {
  enabled: boolean;
  enforce: 'optional' | 'bound' | 'all';
}

/** Who changed a user's settings: the admin at the CLI or the user on the portal. */
export type ChangedVia = 'cli' | 'portal';

/** The user's "two-factor required for send/receive" switch as the settings page and `user show` see it. */
export interface DaemonOtpState {
  /** The user's own switch (off when never set). */
  own: boolean;
  /** Whether a mail login of this user needs two-factor now. */
  required: boolean;
  /** Set by the admin's policy, so the user cannot change it: off for everyone, on for all, or on for bound users. */
  fixed: 'off' | 'all' | 'bound' | null;
}

/**
 * A user's own settings kept in the user record (the daemon-OTP switch). Every change goes through
 * here, from the admin CLI or the portal, and leaves an audit event saying which of the two made it.
 */
export class UserService {
  constructor(
    private readonly store: Store,
    private readonly clock: Clock,
    private readonly audit: Logger,
    private readonly policy: DaemonOtpPolicy,
  ) {}

  /** The daemon-OTP switch and what the policy makes of it; `device` is the user's bound device, if any. */
  async daemonOtp(user: string, device: DeviceRecord | null): Promise<DaemonOtpState> {
    const own = (await this.store.getUser(user))?.daemonOtp === true;
    const { enabled, enforce } = this.policy;
    if (!enabled) return { own, required: false, fixed: 'off' };
    if (enforce === 'all') return { own, required: true, fixed: 'all' };
    if (enforce === 'bound' && device) return { own, required: true, fixed: 'bound' };
    return { own, required: own, fixed: null };
  }

  /** Turns the user's daemon-OTP switch on or off. */
  async setDaemonOtp(user: string, on: boolean, via: ChangedVia): Promise<void> {
    await this.store.setDaemonOtp(user, on, this.clock.now());
    this.audit.info({ event: 'user.daemon-otp', user, on, via }, `daemon OTP ${on ? 'on' : 'off'}`);
  }
}
