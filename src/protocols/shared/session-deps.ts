import type { Duplex } from 'node:stream';
import type { LimitsConfig } from '../../config/schema.js';
import type { Scheduler } from '../../core/clock.js';
import type { AuthorizeLogin, ClientInfo, VerifiedUpstream, VerifyResult } from '../../core/login-types.js';
import type { Logger } from '../../log/logger.js';
import type { TlsContextProvider } from '../../net/tls-context.js';
import type { LiveSessions } from './live-sessions.js';

/** A logged-in upstream session as every protocol's client side needs it: something to splice. */
export interface SplicedUpstream extends VerifiedUpstream {
  socket: Duplex; // logged-in upstream socket, to splice
  buffered: Buffer; // bytes the upstream sent after its login reply
  /** Lets go of the socket for the splice (listeners that would keep this object alive included). */
  handOver?(): { socket: Duplex; buffered: Buffer };
}

/** What every protocol session gets from its service: the core's question, the upstream, the splice. */
export interface MailSessionDeps<U extends SplicedUpstream, C extends ClientInfo = ClientInfo> {
  authorize: AuthorizeLogin;
  /** Logs in upstream with these credentials (the adapter passes this as LoginAttempt.verify). */
  upstreamLogin(user: string, password: string, client: C, signal: AbortSignal): Promise<VerifyResult<U>>;
  /** Splices the two sockets once approved; resolves when the session ends. */
  splice(client: Duplex, upstream: Duplex, opts: { clientBuffered: Buffer; upstreamBuffered: Buffer }): Promise<unknown>;
  tls: TlsContextProvider;
  limits: LimitsConfig;
  logger: Logger; // already a child with { cid, protocol, clientIp }
  /** The process's pre-login sessions, which shutdown says goodbye to; none: the session is not told. */
  sessions?: LiveSessions;
  /** The idle, progress and close-grace timers [the system's]; a test drives them with a FakeClock. */
  scheduler?: Scheduler;
}
