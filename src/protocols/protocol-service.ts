import type { Config } from '../config/schema.js';
import { noMetrics, type Metrics, type ProtocolMeter } from '../core/metrics.js';
import type { CoreServices } from '../core/services.js';
import type { Protocol } from '../core/types.js';
import type { Logger } from '../log/logger.js';
import type { ConnectionHandler } from '../net/mail-listener.js';
import type { TlsContextProvider } from '../net/tls-context.js';
import type { LiveSessions } from './shared/live-sessions.js';

/** What main.ts hands every protocol when it builds that protocol's service. */
export interface ProtocolContext {
  config: Config;
  core: CoreServices;
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

/** The protocol's meter over the core's question (see Metrics); a no-op one without metrics. */
export function protocolMeter(protocol: Protocol, { core, metrics = noMetrics }: ProtocolContext): ProtocolMeter {
  return metrics.protocol(protocol, {
    authorize: core.authorizer.authorize,
    approvedAt: async (user, clientIp) => {
      const name = core.names.canonical(user);
      return name.ok ? ((await core.approvals.find(name.name, clientIp))?.approvedAt ?? null) : null;
    },
  });
}
