import type { AuthorizeLogin, VerifiedUpstream, VerifyResult } from './login-types.js';
import type { Protocol } from './types.js';

/** What a protocol meter needs of the core: the question it counts, and when a tap was recorded. */
export interface MeteredCore {
  authorize: AuthorizeLogin;
  /** When the approval that now covers this login (as typed, from this address) was granted, or null. */
  approvedAt(user: string, clientIp: string): Promise<number | null>;
}

/**
 * One protocol's connections as the operator's dashboards see them. Each method hands back what
 * it was given (the same promise's value, the same answer), so that a no-op meter costs nothing.
 */
export interface ProtocolMeter {
  /** The core's question, counted by result; a held login counts as held while it waits. */
  readonly authorize: AuthorizeLogin;
  /** One client connection's session, from the listener's hand-over to its end. */
  session<T>(run: Promise<T>): Promise<T>;
  /** One password check at the upstream (connection included), timed by its verdict. */
  upstreamLogin<U extends VerifiedUpstream>(run: Promise<VerifyResult<U>>): Promise<VerifyResult<U>>;
  /** A spliced session, counted while it lasts. */
  spliced<T>(run: Promise<T>): Promise<T>;
  /** An upstream connection (TCP, STARTTLS, TLS) succeeded or failed after this many seconds. */
  upstreamConnected(seconds: number, ok: boolean): void;
}

/** The metrics port: main.ts wires a Prometheus one when metrics.port is set, else noMetrics. */
export interface Metrics {
  protocol(protocol: Protocol, core: MeteredCore): ProtocolMeter;
}

/** Counts nothing: what the core and the protocols use when no metrics listener is configured. */
export const noMetrics: Metrics = {
  protocol: (_protocol, core) => ({
    authorize: core.authorize,
    session: (run) => run,
    upstreamLogin: (run) => run,
    spliced: (run) => run,
    upstreamConnected: () => undefined,
  }),
};
