import type { Config } from '../config/schema.js';
import type { CoreServices } from '../core/services.js';
import type { Logger } from '../log/logger.js';
import type { ConnectionHandler } from '../net/mail-listener.js';
import type { TlsContextProvider } from '../net/tls-context.js';

/** What main.ts hands every protocol when it builds that protocol's service. */
export interface ProtocolContext {
  config: Config;
  core: CoreServices;
  tls: TlsContextProvider;
  logger: Logger;
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
