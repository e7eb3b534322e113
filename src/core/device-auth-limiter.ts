import type { Store } from './ports/store.js';
import type { Clock } from './clock.js';

export interface DeviceAuthLimitSettings {
  /** Failed bearer tokens per client IP per window before that IP's failures get 429. */
  failuresPerWindow: number;
  windowMs: number;
}

/**
 * The device API's brake on bad bearer tokens, per client IP, in the store so that every instance
 * behind the balancer adds to one count. It only ever slows failures: a valid token is checked
 * first and always passes, so a phone behind the same NAT as a scanner is never locked out.
 * Store errors propagate (the caller answers 503).
 */
export class DeviceAuthLimiter {
  constructor(
    private readonly store: Store,
    private readonly clock: Clock,
    private readonly settings: DeviceAuthLimitSettings,
  ) {}

  private key(ip: string): string {
    return `device-auth-fail:${ip}`;
  }

  /** Counts one failed token from ip. Returns the count so far in the window and, when it is past
   * the limit, the milliseconds until the window ends (for Retry-After); 0 otherwise. */
  async recordFailure(ip: string): Promise<{ failures: number; retryAfterMs: number }> {
    const { windowMs, failuresPerWindow } = this.settings;
    const now = this.clock.now();
    const failures = await this.store.hit(this.key(ip), windowMs, now);
    const windowEnd = (Math.floor(now / windowMs) + 1) * windowMs;
    return { failures, retryAfterMs: failures > failuresPerWindow ? windowEnd - now : 0 };
  }
}
