import type { Logger } from '../log/logger.js';
import type { Store } from '../stores/store.js';
import type { ApprovalService } from './approval-service.js';
import type { LoginAttempt, LoginResult, VerifiedUpstream } from './login-types.js';
import type { RateLimiter } from './rate-limiter.js';
import type { RequestService } from './request-service.js';
import type { DeviceRecord, Protocol, RequestRecord } from './types.js';

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

  private unavailable(what: string, err: unknown, log: Logger): { kind: 'unavailable'; reason: string } {
    log.warn({ err: err instanceof Error ? err.message : String(err) }, `${what} unavailable`);
    return { kind: 'unavailable', reason: what };
  }
}
