import type { Config, LimitsConfig } from '../config/schema.js';
import type { ClientInfo, VerifyResult } from '../core/login-types.js';
import { noMetrics, type MeteredCore, type Metrics } from '../core/metrics.js';
import type { Protocol } from '../core/types.js';
import type { Logger } from '../log/logger.js';
import type { ConnectionHandler } from '../net/mail-listener.js';
import type { TlsContextProvider } from '../net/tls-context.js';
import type { UpstreamObservers } from '../upstream/connect-upstream.js';
import { splice } from '../upstream/splice.js';
import type { LiveSessions } from './shared/live-sessions.js';
import type { MailSessionDeps, SplicedUpstream } from './shared/session-deps.js';

/** What main.ts hands every protocol when it builds that protocol's service: no more of the config or the core. */
export interface ProtocolContext {
  /** The core's one question (authorize), and when an approval was granted (for the metrics). */
  core: MeteredCore;
  /** The upstream endpoints (config upstream): a protocol without one has no service. */
  upstreams: Config['upstream'];
  /** The limits every session applies (config limits). */
  limits: LimitsConfig;
  /** How often a held IMAP login hears that it is still waiting (daemonOtp.progressInterval). */
  progressIntervalMs: number;
  tls: TlsContextProvider;
  logger: Logger;
  /** Every protocol's pre-login sessions, told of a shutdown. */
  sessions: LiveSessions;
  /** Counts the protocol's connections and logins; none when metrics.port is not set. */
  metrics?: Metrics;
}

/** One protocol as main.ts runs it: the connection handler of its listeners and its upstream's lifecycle. */
export interface ProtocolService {
  handler: ConnectionHandler;
  /** The temporary refusal a connection past limits.maxConnections(PerIp) gets before it is closed. */
  busyLine: string;
  /** Reads what it needs from the upstream at start-up (never throws when the upstream is down). */
  start(): Promise<void>;
  stop(): void;
}

/** What a service needs of its protocol's upstream: a lifecycle and the password check. */
interface ServiceUpstream {
  start(): Promise<void>;
  stop(): void;
  login(user: string, password: string, client: never, signal?: AbortSignal): Promise<VerifyResult<SplicedUpstream>>;
}

/** The session deps an upstream's own session and client types make. */
type UpstreamDeps<Up extends ServiceUpstream> = MailSessionDeps<
  Extract<Awaited<ReturnType<Up['login']>>, { kind: 'ok' }>['session'],
  Extract<Parameters<Up['login']>[2], ClientInfo>
>;

/** What one protocol adds to the service every protocol shares. */
export interface ProtocolSpec<Up extends ServiceUpstream> {
  protocol: Protocol;
  busyLine: string;
  /** The protocol's upstream, built once per service. */
  upstream(logger: Logger, observers: UpstreamObservers): Up;
  /** One client connection's session, given the deps every protocol's session takes. */
  session(socket: Parameters<ConnectionHandler>[0], mode: Parameters<ConnectionHandler>[1], client: ClientInfo, deps: UpstreamDeps<Up>, upstream: Up): Promise<void>;
}

/** A protocol's service: its upstream and listeners' handler, metered, with the shared session deps. */
export function protocolService<Up extends ServiceUpstream>(ctx: ProtocolContext, spec: ProtocolSpec<Up>): ProtocolService {
  const { protocol } = spec;
  // The protocol's meter over the core's question (see Metrics); a no-op one without metrics.
  const meter = (ctx.metrics ?? noMetrics).protocol(protocol, ctx.core);
  const upstream = spec.upstream(ctx.logger.child({ component: 'upstream', protocol }), { onConnect: meter.upstreamConnected });
  return {
    start: () => upstream.start(),
    stop: () => upstream.stop(),
    busyLine: spec.busyLine,
    handler: (socket, mode, client, log) =>
      meter.session(
        spec.session(
          socket,
          mode,
          client,
          {
            authorize: meter.authorize,
            upstreamLogin: (user, password, c, signal) => meter.upstreamLogin(upstream.login(user, password, c, signal)),
            splice: (a, b, o) => meter.spliced(splice(a, b, { ...o, logger: log })),
            tls: ctx.tls,
            limits: ctx.limits,
            sessions: ctx.sessions,
            logger: log,
          },
          upstream,
        ),
      ),
  };
}
