import type { RequestCap, Store } from '../stores/store.js';
import type { Clock } from './clock.js';

export interface RateLimitSettings {
  failedLoginsPerUser: number;
  failedLoginsPerIp: number;
  failedLoginWindowMs: number;
  pushesPerUserPerHour: number;
}

const HOUR = 3_600_000;

/**
 * Counters in the store, shared by every instance: failed logins per user (unknown users too)
 * and per client IP, and pushes per user per hour (against MFA fatigue). Errors propagate so the
 * caller fails closed.
 */
export class RateLimiter {
  constructor(
    private readonly store: Store,
    private readonly clock: Clock,
    private readonly settings: RateLimitSettings,
  ) {}

  private userKey(user: string): string {
    return `fail:user:${user.toLowerCase()}`;
  }
  private ipKey(ip: string): string {
    return `fail:ip:${ip}`;
  }

  /** Which limit, if any, blocks a login attempt now. */
  async loginBlockedBy(user: string, ip: string): Promise<'user' | 'ip' | null> {
    const { failedLoginWindowMs: w } = this.settings;
    const now = this.clock.now();
    const [byUser, byIp] = await Promise.all([this.store.count(this.userKey(user), w, now), this.store.count(this.ipKey(ip), w, now)]);
    if (byUser >= this.settings.failedLoginsPerUser) return 'user';
    if (byIp >= this.settings.failedLoginsPerIp) return 'ip';
    return null;
  }

  async recordFailure(user: string, ip: string): Promise<void> {
    const { failedLoginWindowMs: w } = this.settings;
    const now = this.clock.now();
    await Promise.all([this.store.hit(this.userKey(user), w, now), this.store.hit(this.ipKey(ip), w, now)]);
  }

  /** A correct password clears the user's counter; the IP's runs out with its window, so one
   * valid account cannot be used to reset an address that is guessing at others. */
  async recordSuccess(user: string): Promise<void> {
    await this.store.clear(this.userKey(user), this.settings.failedLoginWindowMs, this.clock.now());
  }

  /** The push cap, for RequestService.openConnection: the store counts a new request under it and
   * refuses one past it in the same atomic step, and joining a pending request never counts. */
  pushCap(user: string): RequestCap {
    return { key: `push:${user.toLowerCase()}`, windowMs: HOUR, max: this.settings.pushesPerUserPerHour };
  }
}
