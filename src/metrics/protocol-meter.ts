import type { Clock } from '../core/clock.js';
import type { AuthorizeLogin, LoginAttempt, LoginResult, VerifiedUpstream, VerifyResult } from '../core/login-types.js';
import type { MeteredCore, ProtocolMeter } from '../core/metrics.js';
import type { Protocol } from '../core/types.js';
import type { PrometheusMetrics } from './prometheus-metrics.js';

/** One protocol's connections open now; plain numbers, read by the gauge only when scraped. */
export class ProtocolCounts {
  open = 0;
  held = 0;
  spliced = 0;
}

function seconds(since: number): number {
  return (performance.now() - since) / 1000;
}

/**
 * Counts one protocol's sessions for Prometheus. On the login path it adds a few integer updates
 * and counter increments; the one extra store read (when the tap was recorded, for the
 * approval-to-login histogram) runs after the login was answered, never before.
 */
export class PrometheusProtocolMeter implements ProtocolMeter {
  constructor(
    private readonly protocol: Protocol,
    private readonly core: MeteredCore,
    private readonly metrics: PrometheusMetrics,
    private readonly counts: ProtocolCounts,
    private readonly clock: Clock,
  ) {}

  readonly authorize: AuthorizeLogin = async <S extends VerifiedUpstream>(attempt: LoginAttempt<S>): Promise<LoginResult<S>> => {
    let held = false;
    const onHold = attempt.onHold;
    let result: LoginResult<S> | undefined;
    try {
      result = await this.core.authorize({
        ...attempt,
        onHold: () => {
          held = true;
          this.counts.held++;
          onHold?.();
        },
      });
      return result;
    } finally {
      const kind = result?.kind ?? 'unavailable';
      this.metrics.logins.inc({ protocol: this.protocol, result: kind });
      if (held) {
        this.counts.held--;
        this.metrics.holds.inc({ protocol: this.protocol, outcome: kind });
      }
      if (result?.kind === 'approved' && result.reason === 'tap') this.tapToLogin(attempt.user, attempt.clientIp);
    }
  };

  /** The session answers OK in the same turn as authorize returns, so "now" is the OK's moment. */
  private tapToLogin(user: string, clientIp: string): void {
    const answeredAt = this.clock.now();
    this.core.approvedAt(user, clientIp).then(
      (approvedAt) => {
        // Another instance's clock may run ahead a little; a negative gap is noise, not a sample.
        if (approvedAt !== null && approvedAt <= answeredAt) this.metrics.approvalToLogin.observe({ protocol: this.protocol }, (answeredAt - approvedAt) / 1000);
      },
      () => undefined, // the store went away since: one sample less
    );
  }

  async session<T>(run: Promise<T>): Promise<T> {
    this.metrics.connectionsAccepted.inc({ protocol: this.protocol });
    this.counts.open++;
    try {
      return await run;
    } finally {
      this.counts.open--;
    }
  }

  async upstreamLogin<U extends VerifiedUpstream>(run: Promise<VerifyResult<U>>): Promise<VerifyResult<U>> {
    const started = performance.now();
    let kind = 'unavailable';
    try {
      const result = await run;
      kind = result.kind;
      return result;
    } finally {
      this.metrics.upstreamLogin.observe({ protocol: this.protocol, result: kind }, seconds(started));
    }
  }

  async spliced<T>(run: Promise<T>): Promise<T> {
    this.counts.spliced++;
    try {
      return await run;
    } finally {
      this.counts.spliced--;
    }
  }

  readonly upstreamConnected = (took: number, ok: boolean): void => {
    this.metrics.upstreamConnect.observe({ protocol: this.protocol, result: ok ? 'ok' : 'failed' }, took);
  };
}
