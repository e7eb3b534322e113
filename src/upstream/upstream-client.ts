import type net from 'node:net';
import type { UpstreamEndpoint } from '../config/schema.js';
import type { ClientInfo, VerifiedUpstream, VerifyResult } from '../core/login-types.js';
import type { Logger } from '../log/logger.js';
import { CapabilityCache, type CapabilityCacheOptions } from './capability-cache.js';
import { connectUpstream, type UpstreamObservers } from './connect-upstream.js';
import { ResponseReader } from './response-reader.js';
import { protocolError, unavailable } from './upstream-errors.js';
import { endPolitely } from './upstream-session.js';

const DEFAULT_CAPABILITY_TTL_MS = 5 * 60_000;
const DEFAULT_LOGIN_TIMEOUT_MS = 30_000;
/** After a failed capability read, how soon the cache tries the upstream again. */
const CAPABILITY_RETRY_MS = 30_000;

/** One connection to the upstream: its socket and the reader its answers come through. */
export interface UpstreamLink {
  readonly socket: net.Socket;
  readonly reader: ResponseReader;
}

/**
 * What one protocol adds to the upstream client: how a connection is wrapped, how the greeting and
 * STARTTLS go, and how an unused connection says goodbye. `G` is what the session keeps of its greeting.
 */
export interface UpstreamDialect<L extends UpstreamLink, G> {
  /** The logger's component, e.g. "imap-upstream". */
  readonly component: string;
  /** Whether an answer line may end in an IMAP literal that belongs to it. */
  readonly imapLiterals: boolean;
  /** The upgrade command as errors name it ("STARTTLS", "STLS"). */
  readonly starttlsVerb: string;
  /** Characters no login command of the protocol can carry: no upstream account can have them. */
  readonly unsendable: RegExp;
  /** Wraps a fresh connection; `plain` is the link it replaces after STARTTLS. */
  link(socket: net.Socket, reader: ResponseReader, plain?: L): L;
  /** Reads and checks the greeting (and anything the protocol says before its first command). */
  greet(link: L, timeoutMs: number): Promise<G>;
  /** On the plain link after greet(): the upgrade command; resolves on the go-ahead, throws when refused. */
  starttls(link: L, timeoutMs: number): Promise<void>;
  /** On the secured link after STARTTLS, which has no greeting of its own: what stands for it. */
  resume?(link: L, plainGreeting: G, timeoutMs: number): Promise<G>;
  /** The line that ends a connection nobody will use ("QUIT", "m5 LOGOUT"). */
  goodbye(link: L): string;
  /** The protocol's capability list, as the cache serves and logs it. */
  readonly capabilityList: CapabilityListSpec;
}

export interface UpstreamClientOptions extends UpstreamObservers {
  /** Wait for the answer to the login itself; password backends can be slower than the handshake. */
  loginTimeoutMs?: number;
}

/** How a protocol's capability list (CAPABILITY, CAPA, EHLO) is served while unknown and logged. */
export type CapabilityListSpec = Pick<CapabilityCacheOptions<string>, 'fallback' | 'readLog' | 'failedMessage'>;

/** A connection open() made: the link and what the dialect kept of the greeting. */
export interface OpenedUpstream<L, G> {
  link: L;
  greeting: G;
}

/**
 * The part of an upstream every protocol shares: connecting (plain, TLS or STARTTLS) within the
 * endpoint's deadline, reading the greeting, the login frame that ties a caller's abort to the
 * socket and turns any failure into an `unavailable` result, and the cached capability list.
 * Each protocol's upstream extends it with its dialect, its capability read and its login.
 */
export abstract class UpstreamClient<L extends UpstreamLink, G> {
  protected readonly log: Logger;
  /** The wait for the login's answer; never shorter than the connect deadline. */
  protected readonly loginTimeoutMs: number;
  /** The wait for every other answer: the endpoint's connect deadline. */
  protected readonly timeoutMs: number;
  protected readonly capabilityCache: CapabilityCache<string>;

  protected constructor(
    private readonly endpoint: UpstreamEndpoint,
    logger: Logger,
    private readonly dialect: UpstreamDialect<L, G>,
    private readonly opts: UpstreamClientOptions,
    /** How long a capability list read from the upstream is served before a background refresh [5 min]. */
    capabilityTtlMs: number | undefined,
  ) {
    this.timeoutMs = endpoint.connectTimeout;
    this.loginTimeoutMs = Math.max(opts.loginTimeoutMs ?? DEFAULT_LOGIN_TIMEOUT_MS, endpoint.connectTimeout);
    this.log = logger.child({ component: dialect.component, upstream: `${endpoint.host}:${endpoint.port}` });
    this.capabilityCache = new CapabilityCache(() => this.readCapabilities(), {
      ...dialect.capabilityList,
      ttlMs: capabilityTtlMs ?? DEFAULT_CAPABILITY_TTL_MS,
      retryMs: CAPABILITY_RETRY_MS,
      logger: this.log,
    });
  }

  /** Reads the capability list once; an unreachable upstream only logs a warning. */
  start(): Promise<void> {
    return this.capabilityCache.start();
  }

  /** No more background refreshes (shutdown). Sessions already handed out are not touched. */
  stop(): void {
    this.capabilityCache.stop();
  }

  /** The upstream's pre-login capability list as a TLS client sees it (what only describes mailotp's own link removed). */
  capabilities(): Promise<string[]> {
    return this.capabilityCache.get();
  }

  /** Reads the capability list on a connection of its own. */
  protected abstract readCapabilities(): Promise<string[]>;

  /**
   * Connects (STARTTLS first when the endpoint says so) and reads the greeting. A failure after the
   * connection stood destroys it. `onSocket` learns the socket as soon as it is there.
   */
  protected async open(signal?: AbortSignal, onSocket?: (socket: net.Socket) => void): Promise<OpenedUpstream<L, G>> {
    const { dialect, timeoutMs } = this;
    let plain: { link: L; greeting: G } | undefined;
    const starttls = async (socket: net.Socket) => {
      const reader = this.reader(socket);
      try {
        const link = dialect.link(socket, reader);
        plain = { link, greeting: await dialect.greet(link, timeoutMs) };
        await dialect.starttls(link, timeoutMs);
      } finally {
        reader.detach();
      }
      // Anything after the go-ahead was sent in clear and is no part of the TLS session (CVE-2011-0411).
      if (reader.takeBuffered().length > 0) throw protocolError(`upstream sent data after its ${dialect.starttlsVerb} answer`);
    };
    const socket = await connectUpstream(this.endpoint, {
      signal,
      starttls: this.endpoint.tls === 'starttls' ? starttls : undefined,
      onConnect: this.opts.onConnect,
    });
    onSocket?.(socket);
    const link = dialect.link(socket, this.reader(socket), plain?.link);
    try {
      if (!plain) return { link, greeting: await dialect.greet(link, timeoutMs) };
      return { link, greeting: dialect.resume ? await dialect.resume(link, plain.greeting, timeoutMs) : plain.greeting };
    } catch (err) {
      socket.destroy();
      throw err;
    }
  }

  /**
   * The frame every login runs in: refuses what the protocol cannot carry, opens the connection,
   * destroys it when `signal` aborts, and turns a failure into `unavailable` (warned unless aborted).
   * `run` gets the opened connection and a logger with the typed user and the client's address.
   */
  protected async loginFrame<S extends VerifiedUpstream>(
    user: string,
    password: string,
    client: ClientInfo,
    signal: AbortSignal | undefined,
    run: (opened: OpenedUpstream<L, G>, log: Logger) => Promise<VerifyResult<S>>,
  ): Promise<VerifyResult<S>> {
    // What the client typed, as sent upstream; `user` in audit lines is the canonical name (core).
    const log = this.log.child({ typedUser: user, clientIp: client.ip });
    if (this.dialect.unsendable.test(user) || this.dialect.unsendable.test(password)) return { kind: 'bad-password' };
    let socket: net.Socket | undefined;
    // connectUpstream handles an abort until it returns; from then on the reads fail on destroy.
    const onAbort = () => socket?.destroy();
    signal?.addEventListener('abort', onAbort, { once: true });
    try {
      const opened = await this.open(signal, (s) => (socket = s));
      if (signal?.aborted) throw unavailable('aborted');
      return await run(opened, log);
    } catch (err) {
      socket?.destroy();
      const reason = signal?.aborted ? 'aborted' : (err as Error).message;
      if (!signal?.aborted) log.warn({ err: reason }, 'upstream login failed');
      return { kind: 'unavailable', reason };
    } finally {
      signal?.removeEventListener('abort', onAbort);
    }
  }

  /** Ends a connection that will not be used: the goodbye, without waiting for the answer. */
  protected quit(link: L): void {
    link.reader.detach();
    endPolitely(link.socket, this.dialect.goodbye(link));
  }

  private reader(socket: net.Socket): ResponseReader {
    return new ResponseReader(socket, { imapLiterals: this.dialect.imapLiterals });
  }
}
