import type { RequestCap, Store } from './ports/store.js';
import type { ApprovalService } from './approval-service.js';
import type { Clock } from './clock.js';

/** Places taken in the failed-login counters by one attempt; `at` names their window. */
export interface LoginReservation {
  user: string;
  ip: string;
  at: number;
  /** When a login of this user from this address was last remembered (rememberLogin), as read
   * while reserving; null when it is not remembered. */
  rememberedAt: number | null;
}

export interface RateLimitSettings {
  failedLoginsPerUser: number;
  failedLoginsPerIp: number;
  failedLoginWindowMs: number;
  pushesPerUserPerHour: number;
}

const HOUR = 3_600_000;

/** A login already remembered less than this part of the window ago is not written again. */
const REMEMBER_REFRESH = 0.1;

/**
 * Counters in the store, shared by every instance: failed logins per user (unknown users too)
 * and per client IP, and pushes per user per hour (against MFA fatigue). Errors propagate so the
 * caller fails closed.
 */
export class RateLimiter {
  constructor(
    private readonly store: Store,
    private readonly clock: Clock,
    private readonly approvals: ApprovalService,
    private readonly settings: RateLimitSettings,
  ) {}

  /** `user` is the canonical name (LoginAuthorizer canonicalises first): one counter per account. */
  private userKey(user: string): string {
    return `fail:user:${user}`;
  }
  private ipKey(ip: string): string {
    return `fail:ip:${ip}`;
  }

  /** The shared value that says "this address logged in as this user lately". JSON keeps the two
   * parts apart whatever the user name holds (IPv6 addresses have colons too). */
  private loggedInKey(user: string, ip: string): string {
    return `logged-in:${JSON.stringify([user, ip])}`;
  }

  /**
   * Counts the attempt before the password is checked, so that concurrent attempts cannot all read
   * "under the cap" and then all reach the upstream: each hit gets its own number from the store's
   * atomic counter, and only those within the cap go on. A refused attempt gives its places back
   * (it checked no password). The per-user cap applies to addresses not known for the user (see
   * isKnownAddress); the per-IP cap to everyone. Store errors propagate: the caller fails closed.
   */
  async reserveLogin(user: string, ip: string): Promise<{ blocked: 'user' | 'ip' } | { reservation: LoginReservation }> {
    const { failedLoginWindowMs: w } = this.settings;
    const at = this.clock.now();
    const [known, byUser, byIp] = await Promise.all([this.isKnownAddress(user, ip), this.store.hit(this.userKey(user), w, at), this.store.hit(this.ipKey(ip), w, at)]);
    const reservation: LoginReservation = { user, ip, at, rememberedAt: known.rememberedAt };
    const blocked = byIp > this.settings.failedLoginsPerIp ? 'ip' : !known.known && byUser > this.settings.failedLoginsPerUser ? 'user' : null;
    if (!blocked) return { reservation };
    await this.releaseLogin(reservation);
    return { blocked };
  }

  /** Gives the places of an attempt back: its password was right, or never judged (upstream down). A
   * wrong password keeps them until the window ends. */
  async releaseLogin(r: LoginReservation): Promise<void> {
    const w = this.settings.failedLoginWindowMs;
    await Promise.all([this.store.release(this.userKey(r.user), w, r.at), this.store.release(this.ipKey(r.ip), w, r.at)]);
  }

  /**
   * Remembers, for one failed-login window and for every instance, that this address logged in as
   * the user; other addresses' failures then cannot lock it out. The value is when. A login whose
   * reservation saw it remembered less than a tenth of the window ago writes nothing: a busy client
   * costs one store write per tenth of the window instead of one per login, and stays remembered
   * for at least 0.9 of the window after its last login.
   */
  async rememberLogin(user: string, ip: string, reservation?: LoginReservation): Promise<void> {
    const now = this.clock.now();
    const w = this.settings.failedLoginWindowMs;
    const last = reservation?.user === user && reservation.ip === ip ? reservation.rememberedAt : null;
    if (last !== null && last <= now && now - last < w * REMEMBER_REFRESH) return;
    await this.store.setValue(this.loggedInKey(user, ip), String(now), w, now);
  }

  /**
   * An address known for the user: one holding an approval granted to a login from it, or one that
   * logged in as the user within the window. The per-user cap does not apply to it: otherwise ten
   * wrong passwords from anywhere would lock the real user out of the places it already uses.
   */
  private async isKnownAddress(user: string, ip: string): Promise<{ known: boolean; rememberedAt: number | null }> {
    const [loggedIn, approved] = await Promise.all([this.store.getValue(this.loggedInKey(user, ip), this.clock.now()), this.approvals.grantedTo(user, ip)]);
    // Values written before they held the time ('1') read as long ago: the next login rewrites them.
    const at = loggedIn === null ? null : Number(loggedIn);
    return { known: loggedIn !== null || approved, rememberedAt: at !== null && Number.isFinite(at) ? at : null };
  }

  /** The push cap, for RequestService.openConnection: the store counts a new request under it and
   * refuses one past it in the same atomic step, and joining a pending request never counts. */
  pushCap(user: string): RequestCap {
    return { key: `push:${user}`, windowMs: HOUR, max: this.settings.pushesPerUserPerHour };
  }
}
