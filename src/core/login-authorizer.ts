import type { Logger } from '../log/logger.js';
import type { Store } from './ports/store.js';
import type { ApprovalService } from './approval-service.js';
import type { Cooldowns } from './cooldowns.js';
import type { LoginAttempt, LoginResult, PasswordCheck, PasswordCheckResult, VerifiedUpstream } from './login-types.js';
import { HeldLogins } from './held-logins.js';
import type { LoginReservation, RateLimiter } from './rate-limiter.js';
import type { RequestService } from './request-service.js';
import type { DeviceRecord, Protocol, RequestRecord } from './types.js';
import type { UserNames } from './user-names.js';

export interface DaemonOtpSettings {
  enabled: boolean;
  enforce: 'optional' | 'bound' | 'all';
  holdTimeMs: number;
  /** Per-protocol holds (daemonOtp.holdTimes resolved); a protocol not named waits holdTimeMs. */
  holdTimesMs?: Partial<Record<Protocol, number>>;
}

type Requirement = { required: false } | { required: true; device: DeviceRecord | null };

/**
 * The one decision every protocol asks for: may this client in now?
 * Order: canonical name → rate limits → password at the upstream → is two-factor required →
 * approval window → deny cool-down → open or join the pending request and hold until the tap,
 * the hold time, or the client leaves.
 * Any store failure ends in 'unavailable' (a temporary refusal), never in 'approved'.
 */
export class LoginAuthorizer {
  constructor(
    private readonly store: Store,
    private readonly approvals: ApprovalService,
    private readonly requests: RequestService,
    private readonly limiter: RateLimiter,
    private readonly logger: Logger,
    private readonly settings: DaemonOtpSettings,
    private readonly names: UserNames,
    private readonly cooldowns: Cooldowns,
    /** limits.maxHeldLoginsPerUser; unlimited when not given (tests of other things). */
    private readonly held: HeldLogins = new HeldLogins(Infinity),
  ) {}

  /** Bound so it can be handed to adapters as a plain function. */
  readonly authorize = async <S extends VerifiedUpstream>(attempt: LoginAttempt<S>): Promise<LoginResult<S>> => {
    // One identity from here on: the canonical name, for every limit, record and log line. The
    // adapter's verify() still sends the upstream exactly what the client typed.
    const canonical = this.names.canonical(attempt.user);
    if (!canonical.ok) {
      const log = this.logger.child({ clientIp: attempt.clientIp, protocol: attempt.protocol });
      log.info({ event: 'login.bad-password', reason: 'invalid-user-name', why: canonical.why }, 'login bad-password');
      return { kind: 'bad-password', invalidName: canonical.why };
    }
    const named: LoginAttempt<S> = { ...attempt, user: canonical.name };
    const log = this.logger.child({ user: named.user, clientIp: named.clientIp, protocol: named.protocol });
    const guard = this.held.guard(named);
    const reserved: { reservation?: LoginReservation } = {};
    let result = await this.decide(guard.attempt, log, reserved);
    guard.release();
    if (result.kind === 'aborted' && guard.refused()) result = { kind: 'rate-limited', limit: 'held' };
    if (result.kind === 'approved') {
      try {
        await this.limiter.rememberLogin(named.user, named.clientIp, reserved.reservation);
      } catch (err) {
        // Only costs this address its exemption from the per-user cap; the login itself is fine.
        log.warn({ err: err instanceof Error ? err.message : String(err) }, 'could not remember a successful login');
      }
    }
    const event = `login.${result.kind}` as const;
    const level = result.kind === 'approved' ? 'info' : result.kind === 'unavailable' ? 'warn' : 'info';
    const detail = 'reason' in result ? { reason: result.reason } : 'limit' in result ? { limit: result.limit } : {};
    const extra = result.kind === 'denied' && result.cooldown ? { reason: `${result.cooldown}-cooldown`, until: new Date(result.until).toISOString() } : {};
    log[level]({ event, ...detail, ...extra }, `login ${result.kind}`);
    return result;
  };

  /** When the approval that now covers this login (as typed, from this address) was granted, or null:
   * the metrics' approval age. Bound, as authorize is, so the authorizer is a MeteredCore. */
  readonly approvedAt = async (user: string, clientIp: string): Promise<number | null> => {
    const name = this.names.canonical(user);
    return name.ok ? ((await this.approvals.find(name.name, clientIp))?.approvedAt ?? null) : null;
  };

  /**
   * The password step alone, for the web sign-in: the failed-login limits and counters of the mail
   * logins, then the upstream's verdict. The upstream session is closed at once; the caller decides
   * about the second factor itself.
   */
  async checkPassword<S extends VerifiedUpstream>(check: PasswordCheck<S>): Promise<PasswordCheckResult> {
    // The same identity and the same counters as a mail login: canonical name first, the attempt
    // counted before the upstream is asked.
    const canonical = this.names.canonical(check.user);
    if (!canonical.ok) {
      this.logger.info({ event: 'password.bad-password', clientIp: check.clientIp, protocol: 'web', reason: 'invalid-user-name', why: canonical.why }, 'web password check: bad-password');
      return { kind: 'bad-password' };
    }
    const user = canonical.name;
    const { clientIp } = check;
    const log = this.logger.child({ user, clientIp, protocol: 'web' });
    let result: PasswordCheckResult;
    try {
      const reserved = await this.limiter.reserveLogin(user, clientIp);
      if ('blocked' in reserved) {
        result = { kind: 'rate-limited', limit: reserved.blocked };
      } else {
        let verified;
        try {
          verified = await check.verify();
        } catch (err) {
          await this.giveBack(reserved.reservation, log);
          throw err;
        }
        // A wrong password keeps its place in the failed-login counters; anything else gives it back.
        if (verified.kind !== 'bad-password') await this.giveBack(reserved.reservation, log);
        if (verified.kind === 'ok') {
          verified.session.close();
          result = { kind: 'ok', user };
        } else if (verified.kind === 'bad-password') {
          result = { kind: 'bad-password' };
        } else {
          result = { kind: 'unavailable', reason: `upstream: ${verified.reason}` };
        }
      }
    } catch (err) {
      result = this.unavailable('store or upstream', err, log);
    }
    log[result.kind === 'unavailable' ? 'warn' : 'info']({ event: `password.${result.kind}` }, `web password check: ${result.kind}`);
    return result;
  }

  /** `out` receives the login's reservation, which says whether rememberLogin has to write. */
  private async decide<S extends VerifiedUpstream>(attempt: LoginAttempt<S>, log: Logger, out: { reservation?: LoginReservation }): Promise<LoginResult<S>> {
    const { user, clientIp } = attempt;
    let reservation: LoginReservation;
    try {
      const reserved = await this.limiter.reserveLogin(user, clientIp);
      if ('blocked' in reserved) return { kind: 'rate-limited', limit: reserved.blocked };
      reservation = reserved.reservation;
      out.reservation = reservation;
    } catch (err) {
      return this.unavailable('store', err, log);
    }

    let verified;
    try {
      verified = await attempt.verify();
    } catch (err) {
      await this.giveBack(reservation, log);
      return this.unavailable('upstream', err, log);
    }
    // A wrong password keeps its place in the failed-login counters; anything else gives it back
    // (a right one below, together with the reads of the decision).
    if (verified.kind === 'unavailable') {
      await this.giveBack(reservation, log);
      return { kind: 'unavailable', reason: `upstream: ${verified.reason}`, ...(verified.reply !== undefined ? { reply: verified.reply } : {}) };
    }
    if (verified.kind === 'bad-password') {
      return { kind: 'bad-password', ...(verified.reply !== undefined ? { reply: verified.reply } : {}) };
    }
    const session = verified.session;
    const refuse = (r: LoginResult<S>): LoginResult<S> => {
      session.close();
      return r;
    };

    try {
      if (!this.settings.enabled) {
        await this.giveBack(reservation, log);
        return { kind: 'approved', session, reason: 'disabled' };
      }
      // Everything the decision reads, at once and beside giving the places back: on a shared store
      // one round trip instead of four in a row. They are judged in the same order as ever.
      const [, need, exempt, approval] = await Promise.all([
        this.giveBack(reservation, log),
        this.requirement(user),
        this.approvals.exemption(user, clientIp),
        this.approvals.find(user, clientIp),
      ]);
      if (!need.required) return { kind: 'approved', session, reason: 'not-required' };
      // Before the device: a scanner's account may have no phone at all.
      if (exempt) return { kind: 'approved', session, reason: exempt };
      if (!need.device) return refuse({ kind: 'no-device' });
      if (approval) return { kind: 'approved', session, reason: 'approval' };
      // After a deny (or a report) this address gets no new push for a while: no fatigue by retries.
      const cooldown = await this.cooldowns.active(user, clientIp);
      if (cooldown) return refuse({ kind: 'denied', cooldown: cooldown.kind, until: cooldown.until });

      const earlier = await this.earlierHold(attempt.timedOut ?? [], user, clientIp);
      if (earlier) {
        // A hold already timed out on this connection (NeoMutt retries the next mechanism at once):
        // answer now instead of stacking another full hold. An approval was looked for just above.
        log.debug({ requestId: earlier.id, status: earlier.status }, 'hold already timed out on this connection; not holding again');
        return refuse(earlier.status === 'denied' ? { kind: 'denied', requestId: earlier.id } : { kind: 'pending-timeout', requestId: earlier.id });
      }
      const pending = await this.openOrJoin(attempt, need.device);
      if (pending === 'push-limit') return refuse({ kind: 'rate-limited', limit: 'push' });
      attempt.onHold?.();
      const holdMs = this.settings.holdTimesMs?.[attempt.protocol] ?? this.settings.holdTimeMs;
      log.info({ event: 'login.held', requestId: pending.id, holdMs }, 'login held for the tap');
      const outcome = await this.requests.waitForDecision(pending.id, holdMs, attempt.signal);
      switch (outcome) {
        case 'approved':
          return { kind: 'approved', session, reason: 'tap' };
        case 'denied':
          return refuse({ kind: 'denied', requestId: pending.id });
        case 'timeout':
          // A tap may have landed just now, or on a request that was decided before we joined.
          if (await this.approvals.find(user, clientIp)) return { kind: 'approved', session, reason: 'tap' };
          return refuse({ kind: 'pending-timeout', requestId: pending.id });
        case 'aborted':
          return refuse({ kind: 'aborted' });
      }
    } catch (err) {
      return refuse(this.unavailable('store', err, log));
    }
  }

  private async requirement(user: string): Promise<Requirement> {
    const [record, device] = await Promise.all([this.store.getUser(user), this.store.getDeviceByUser(user)]);
    const switchedOn = record?.daemonOtp === true;
    switch (this.settings.enforce) {
      case 'optional':
        return switchedOn ? { required: true, device } : { required: false };
      case 'bound':
        return switchedOn || device ? { required: true, device } : { required: false };
      case 'all':
        return { required: true, device };
    }
  }

  /**
   * The request of a hold that already timed out on the client's connection for this user and
   * address, while it is still pending or was denied. An expired one (or an approval revoked since)
   * is no reason to refuse: then the login asks afresh.
   */
  private async earlierHold(timedOut: readonly string[], user: string, clientIp: string): Promise<RequestRecord | null> {
    for (const id of timedOut) {
      const r = await this.requests.get(id);
      if (!r || r.type !== 'connection' || r.user !== user || r.clientIp !== clientIp) continue;
      if (r.status === 'pending' || r.status === 'denied') return r;
    }
    return null;
  }

  private async openOrJoin<S extends VerifiedUpstream>(attempt: LoginAttempt<S>, device: DeviceRecord): Promise<{ id: string } | 'push-limit'> {
    // Only a new push counts against the cap, decided in the store's atomic create: a retry that
    // joins the pending request of its user and address always may, and a burst cannot overshoot.
    const opened = await this.requests.openConnection(
      {
        user: attempt.user,
        device,
        protocol: attempt.protocol,
        clientIp: attempt.clientIp,
        ...(attempt.clientName ? { clientName: attempt.clientName } : {}),
      },
      this.limiter.pushCap(attempt.user),
    );
    return opened === 'capped' ? 'push-limit' : { id: opened.request.id };
  }

  /** Failing to give places back only leaves the counters high until their window ends: fail closed. */
  private async giveBack(reservation: LoginReservation, log: Logger): Promise<void> {
    try {
      await this.limiter.releaseLogin(reservation);
    } catch (err) {
      log.warn({ err: err instanceof Error ? err.message : String(err) }, 'could not release a login reservation');
    }
  }

  private unavailable(what: string, err: unknown, log: Logger): { kind: 'unavailable'; reason: string } {
    log.warn({ err: err instanceof Error ? err.message : String(err) }, `${what} unavailable`);
    return { kind: 'unavailable', reason: what };
  }
}
