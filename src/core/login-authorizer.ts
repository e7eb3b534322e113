import type { Logger } from '../log/logger.js';
import type { Store } from '../stores/store.js';
import type { ApprovalService } from './approval-service.js';
import type { LoginAttempt, LoginResult, PasswordCheck, PasswordCheckResult, VerifiedUpstream } from './login-types.js';
import type { RateLimiter } from './rate-limiter.js';
import type { RequestService } from './request-service.js';
import type { DeviceRecord } from './types.js';

export interface DaemonOtpSettings {
  enabled: boolean;
  enforce: 'optional' | 'bound' | 'all';
  holdTimeMs: number;
}

type Requirement = { required: false } | { required: true; device: DeviceRecord | null };

/**
 * The one decision every protocol asks for: may this client in now?
 * Order: rate limits → password at the upstream → is two-factor required → approval window →
 * open or join the pending request and hold until the tap, the hold time, or the client leaves.
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
  ) {}

  /** Bound so it can be handed to adapters as a plain function. */
  readonly authorize = async <S extends VerifiedUpstream>(attempt: LoginAttempt<S>): Promise<LoginResult<S>> => {
    const log = this.logger.child({ user: attempt.user, clientIp: attempt.clientIp, protocol: attempt.protocol });
    const result = await this.decide(attempt, log);
    const event = `login.${result.kind}` as const;
    const level = result.kind === 'approved' ? 'info' : result.kind === 'unavailable' ? 'warn' : 'info';
    log[level]({ event, ...('reason' in result ? { reason: result.reason } : {}) }, `login ${result.kind}`);
    return result;
  };

  /**
   * The password step alone, for the web sign-in: the failed-login limits and counters of the mail
   * logins, then the upstream's verdict. The upstream session is closed at once; the caller decides
   * about the second factor itself.
   */
  async checkPassword<S extends VerifiedUpstream>(check: PasswordCheck<S>): Promise<PasswordCheckResult> {
    const { user, clientIp } = check;
    const log = this.logger.child({ user, clientIp, protocol: 'web' });
    let result: PasswordCheckResult;
    try {
      const blocked = await this.limiter.loginBlockedBy(user, clientIp);
      if (blocked) {
        result = { kind: 'rate-limited', limit: blocked };
      } else {
        const verified = await check.verify();
        if (verified.kind === 'ok') {
          verified.session.close();
          await this.limiter.recordSuccess(user);
          result = { kind: 'ok' };
        } else if (verified.kind === 'bad-password') {
          await this.limiter.recordFailure(user, clientIp);
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

  private async decide<S extends VerifiedUpstream>(attempt: LoginAttempt<S>, log: Logger): Promise<LoginResult<S>> {
    const { user, clientIp } = attempt;
    try {
      const blocked = await this.limiter.loginBlockedBy(user, clientIp);
      if (blocked) return { kind: 'rate-limited', limit: blocked };
    } catch (err) {
      return this.unavailable('store', err, log);
    }

    let verified;
    try {
      verified = await attempt.verify();
    } catch (err) {
      return this.unavailable('upstream', err, log);
    }
    if (verified.kind === 'unavailable') {
      return { kind: 'unavailable', reason: `upstream: ${verified.reason}`, ...(verified.reply !== undefined ? { reply: verified.reply } : {}) };
    }
    if (verified.kind === 'bad-password') {
      try {
        await this.limiter.recordFailure(user, clientIp);
      } catch (err) {
        log.warn({ err: String(err) }, 'could not count a failed login');
      }
      return { kind: 'bad-password', ...(verified.reply !== undefined ? { reply: verified.reply } : {}) };
    }
    const session = verified.session;
    const refuse = (r: LoginResult<S>): LoginResult<S> => {
      session.close();
      return r;
    };

    try {
      await this.limiter.recordSuccess(user);
      if (!this.settings.enabled) return { kind: 'approved', session, reason: 'disabled' };
      const need = await this.requirement(user);
      if (!need.required) return { kind: 'approved', session, reason: 'not-required' };
      if (!need.device) return refuse({ kind: 'no-device' });
      if (await this.approvals.find(user, clientIp)) return { kind: 'approved', session, reason: 'approval' };

      const pending = await this.openOrJoin(attempt, need.device);
      if (pending === 'push-limit') return refuse({ kind: 'rate-limited', limit: 'push' });
      attempt.onHold?.();
      const outcome = await this.requests.waitForDecision(pending.id, this.settings.holdTimeMs, attempt.signal);
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

  private async openOrJoin<S extends VerifiedUpstream>(attempt: LoginAttempt<S>, device: DeviceRecord): Promise<{ id: string } | 'push-limit'> {
    if (!(await this.limiter.pushAllowed(attempt.user))) {
      // Joining a request already pushed costs nothing; only a new push is limited.
      return 'push-limit';
    }
    const { request, created } = await this.requests.openConnection({
      user: attempt.user,
      device,
      protocol: attempt.protocol,
      clientIp: attempt.clientIp,
      ...(attempt.clientName ? { clientName: attempt.clientName } : {}),
    });
    if (created) await this.limiter.recordPush(attempt.user);
    return { id: request.id };
  }

  private unavailable(what: string, err: unknown, log: Logger): { kind: 'unavailable'; reason: string } {
    log.warn({ err: err instanceof Error ? err.message : String(err) }, `${what} unavailable`);
    return { kind: 'unavailable', reason: what };
  }
}
