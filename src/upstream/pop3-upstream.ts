import net from 'node:net';
import type tls from 'node:tls';
import type { UpstreamEndpoint } from '../config/schema.js';
import { MailotpError } from '../core/errors.js';
import type { ClientInfo, VerifyResult } from '../core/login-types.js';
import type { Logger } from '../log/logger.js';
import { connectUpstream, type ConnectObserver, type UpstreamObservers } from './connect-upstream.js';
import { CapabilityCache } from './capability-cache.js';
import { ResponseReader } from './response-reader.js';
import { endPolitely, UpstreamSession } from './upstream-session.js';

/** What capabilities() answers while the upstream has never been reachable. */
export const DEFAULT_POP3_CAPABILITIES: readonly string[] = ['TOP', 'UIDL'];

/**
 * -ERR codes that mean "not now" rather than "wrong password" (RFC 2449, RFC 3206). The client
 * sees the upstream's own line: "[IN-USE] Mailbox is locked" tells the user more than ours would.
 */
const TEMPORARY_CODES = new Set(['IN-USE', 'SYS/TEMP', 'LOGIN-DELAY', 'SYS/PERM']);

const DEFAULT_CAPABILITY_TTL_MS = 5 * 60_000;
const DEFAULT_LOGIN_TIMEOUT_MS = 30_000;
const CAPABILITY_RETRY_MS = 30_000;
/** A CAPA answer longer than this is not a capability list. */
const MAX_CAPA_LINES = 100;

export interface Pop3UpstreamOptions extends UpstreamObservers {
  capabilityTtlMs?: number;
  /** Wait for the answer to PASS/AUTH; password backends can be slower than the handshake. */
  loginTimeoutMs?: number;
  /** 'user' skips AUTH PLAIN, for upstreams whose SASL is broken (and for tests). */
  auth?: 'auto' | 'user';
}

/**
 * A logged-in POP3 session on the upstream, held while the phone decides, then spliced or closed.
 * close() sends QUIT: nothing was marked deleted, so the UPDATE state changes nothing.
 */
export class Pop3UpstreamSession extends UpstreamSession {
  constructor(
    socket: net.Socket | tls.TLSSocket,
    /** What followed "+OK " in the answer to PASS/AUTH, e.g. "Logged in.". */
    readonly loginResponseText: string,
    buffered: Buffer,
  ) {
    super(socket, buffered, 'QUIT');
  }
}

interface Pop3Reply {
  ok: boolean;
  /** Everything after "+OK " or "-ERR ". */
  text: string;
}

/** One upstream connection's command/response exchange. */
class Pop3Exchange {
  constructor(
    readonly socket: net.Socket,
    readonly reader: ResponseReader,
  ) {}

  async status(timeoutMs: number, after: string): Promise<Pop3Reply> {
    const line = await this.reader.readLine(timeoutMs);
    const m = /^(\+OK|-ERR)(?: (.*))?$/is.exec(line);
    if (!m) throw protocol(`unexpected answer to ${after}: ${clip(line)}`);
    return { ok: m[1]!.toUpperCase() === '+OK', text: m[2] ?? '' };
  }

  /** Sends one line; `verb` names it in errors, since the rest may be a credential. */
  command(line: string, timeoutMs: number, verb = line.split(' ', 1)[0] ?? ''): Promise<Pop3Reply> {
    this.socket.write(`${line}\r\n`);
    return this.status(timeoutMs, verb);
  }

  /** The body of a multi-line answer, dot-unstuffed, without the terminating ".". */
  async multiline(timeoutMs: number): Promise<string[]> {
    const lines: string[] = [];
    for (;;) {
      const line = await this.reader.readLine(timeoutMs);
      if (line === '.') return lines;
      if (lines.length >= MAX_CAPA_LINES) throw protocol('multi-line answer too long');
      lines.push(line.startsWith('.') ? line.slice(1) : line);
    }
  }
}

function clip(line: string): string {
  const printable = line.replace(/[^\x20-\x7e]/g, '?');
  return printable.length > 200 ? `${printable.slice(0, 200)}...` : printable;
}

function unavailable(message: string): MailotpError {
  return new MailotpError('MAILOTP_ERR_UPSTREAM_UNAVAILABLE', message);
}

function protocol(message: string): MailotpError {
  return new MailotpError('MAILOTP_ERR_UPSTREAM_PROTOCOL', message);
}

function capaTag(line: string): string {
  return (line.split(' ', 1)[0] ?? '').toUpperCase();
}

/** The SASL mechanisms of a CAPA list, upper-cased. */
function saslMechanisms(caps: readonly string[]): string[] {
  const line = caps.find((c) => capaTag(c) === 'SASL');
  return line ? line.split(' ').slice(1).map((m) => m.toUpperCase()) : [];
}

/** "::ffff:192.0.2.1" (a v4 client on a dual-stack listener) as the plain v4 address. */
function plainIp(ip: string): string {
  const m = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(ip);
  return m ? m[1]! : ip;
}

/** An -ERR to the login: the upstream's words, as a temporary refusal or a wrong password. */
function refusal(text: string): VerifyResult<Pop3UpstreamSession> {
  const code = /^\[([^\]\s]+)\]/.exec(text)?.[1]?.toUpperCase();
  if (code !== undefined && TEMPORARY_CODES.has(code)) return { kind: 'unavailable', reason: `upstream: -ERR ${clip(text)}`, reply: text };
  return { kind: 'bad-password', reply: text };
}

/** The POP3 side of mailotp's upstream: checks passwords by logging in, and reports CAPA. */
export class Pop3Upstream {
  private readonly loginTimeoutMs: number;
  private readonly authMode: 'auto' | 'user';
  private readonly log: Logger;
  private readonly onConnect: ConnectObserver | undefined;
  private readonly capabilityCache: CapabilityCache<string>;

  constructor(
    private readonly endpoint: UpstreamEndpoint,
    logger: Logger,
    opts: Pop3UpstreamOptions = {},
  ) {
    this.loginTimeoutMs = Math.max(opts.loginTimeoutMs ?? DEFAULT_LOGIN_TIMEOUT_MS, endpoint.connectTimeout);
    this.authMode = opts.auth ?? 'auto';
    this.onConnect = opts.onConnect;
    this.log = logger.child({ component: 'pop3-upstream', upstream: `${endpoint.host}:${endpoint.port}` });
    this.capabilityCache = new CapabilityCache(() => this.fetchCapabilities(), {
      ttlMs: opts.capabilityTtlMs ?? DEFAULT_CAPABILITY_TTL_MS,
      retryMs: CAPABILITY_RETRY_MS,
      fallback: DEFAULT_POP3_CAPABILITIES,
      logger: this.log,
      readLog: (caps) => [{ capabilities: caps.join(', ') }, 'upstream CAPA read'],
      failedMessage: 'cannot read the upstream POP3 CAPA; keeping the previous list',
    });
  }

  /** Reads CAPA once; an unreachable upstream only logs a warning. */
  start(): Promise<void> {
    return this.capabilityCache.start();
  }

  stop(): void {
    this.capabilityCache.stop();
  }

  /** The upstream's pre-login CAPA lines as a TLS client sees them (STLS removed). */
  capabilities(): Promise<string[]> {
    return this.capabilityCache.get();
  }

  private async fetchCapabilities(): Promise<string[]> {
    const { exchange } = await this.open();
    try {
      const caps = await this.capa(exchange);
      if (!caps) throw protocol('upstream refused CAPA');
      return caps.filter((c) => capaTag(c) !== 'STLS');
    } finally {
      quit(exchange);
    }
  }

  /** CAPA's lines, or null when the upstream does not know CAPA (RFC 1939 servers). */
  private async capa(exchange: Pop3Exchange): Promise<string[] | null> {
    const timeout = this.endpoint.connectTimeout;
    const r = await exchange.command('CAPA', timeout);
    return r.ok ? exchange.multiline(timeout) : null;
  }

  /** Connects (STLS first when configured) and reads the greeting; returns its text. */
  private async open(signal?: AbortSignal, onSocket?: (socket: net.Socket) => void): Promise<{ exchange: Pop3Exchange; greeting: string }> {
    const timeout = this.endpoint.connectTimeout;
    let greeting = '';
    const starttls = async (plain: net.Socket) => {
      const reader = new ResponseReader(plain, { imapLiterals: false });
      let answer: Pop3Reply;
      try {
        const exchange = new Pop3Exchange(plain, reader);
        greeting = checkGreeting(await exchange.status(timeout, 'the connection'));
        answer = await exchange.command('STLS', timeout);
      } finally {
        reader.detach();
      }
      if (!answer.ok) throw unavailable(`upstream refused STLS: ${clip(answer.text)}`);
      // Anything after the +OK was sent in clear and is no part of the TLS session (CVE-2011-0411).
      if (reader.takeBuffered().length > 0) throw protocol('upstream sent data after its STLS answer');
    };
    const socket = await connectUpstream(this.endpoint, { signal, starttls: this.endpoint.tls === 'starttls' ? starttls : undefined, onConnect: this.onConnect });
    onSocket?.(socket);
    const exchange = new Pop3Exchange(socket, new ResponseReader(socket, { imapLiterals: false }));
    try {
      if (this.endpoint.tls !== 'starttls') greeting = checkGreeting(await exchange.status(timeout, 'the connection'));
      return { exchange, greeting };
    } catch (err) {
      socket.destroy();
      throw err;
    }
  }

  async login(user: string, password: string, client: ClientInfo, signal?: AbortSignal): Promise<VerifyResult<Pop3UpstreamSession>> {
    // What the client typed, as sent upstream; `user` in audit lines is the canonical name (core).
    const log = this.log.child({ typedUser: user, clientIp: client.ip });
    // No POP3 command or SASL PLAIN message can carry these, so no upstream account has them.
    if (/[\0\r\n]/.test(user) || /[\0\r\n]/.test(password)) return { kind: 'bad-password' };
    let exchange: Pop3Exchange | undefined;
    let socket: net.Socket | undefined;
    const onAbort = () => socket?.destroy();
    signal?.addEventListener('abort', onAbort, { once: true });
    try {
      const opened = await this.open(signal, (s) => (socket = s));
      exchange = opened.exchange;
      if (signal?.aborted) throw unavailable('aborted');
      const timeout = this.endpoint.connectTimeout;
      const caps = await this.capa(exchange);

      // Dovecot (2.3) offers XCLIENT only to login_trusted_networks, and only as "[XCLIENT]" in the
      // greeting, not in CAPA. Sent only when offered: other servers count it as a bad command.
      const ip = plainIp(client.ip);
      const offered = /^\[XCLIENT\]/i.test(opened.greeting) || (caps ?? []).some((c) => capaTag(c) === 'XCLIENT');
      if (offered && net.isIP(ip) !== 0) {
        const r = await exchange.command(`XCLIENT ADDR=${ip} PORT=${client.port}`, timeout);
        if (!r.ok) log.debug({ text: clip(r.text) }, 'upstream did not take XCLIENT');
      }

      let r: Pop3Reply;
      if (this.authMode === 'auto' && saslMechanisms(caps ?? []).includes('PLAIN')) {
        // RFC 5034 initial response: one round trip, and the password never sits on a line of its own.
        const ir = Buffer.from(`\0${user}\0${password}`, 'utf8').toString('base64');
        r = await exchange.command(`AUTH PLAIN ${ir}`, this.loginTimeoutMs, 'AUTH');
      } else {
        if (caps && !caps.some((c) => capaTag(c) === 'USER')) {
          throw unavailable('upstream offers neither SASL PLAIN nor USER on this connection');
        }
        r = await exchange.command(`USER ${user}`, timeout, 'USER');
        if (r.ok) r = await exchange.command(`PASS ${password}`, this.loginTimeoutMs, 'PASS');
      }
      if (r.ok) {
        log.debug('upstream login ok');
        return { kind: 'ok', session: new Pop3UpstreamSession(exchange.socket, r.text, exchange.reader.takeBuffered()) };
      }
      quit(exchange);
      const result = refusal(r.text);
      if (result.kind === 'unavailable') log.warn({ text: clip(r.text) }, 'upstream refused the login temporarily');
      else log.debug({ text: clip(r.text) }, 'upstream refused the password');
      return result;
    } catch (err) {
      socket?.destroy();
      const reason = signal?.aborted ? 'aborted' : (err as Error).message;
      if (!signal?.aborted) log.warn({ err: reason }, 'upstream login failed');
      return { kind: 'unavailable', reason };
    } finally {
      signal?.removeEventListener('abort', onAbort);
    }
  }
}

/** Ends a connection that will not be used: QUIT, without waiting for the answer. */
function quit(exchange: Pop3Exchange): void {
  exchange.reader.detach();
  endPolitely(exchange.socket, 'QUIT');
}

/** Accepts "+OK"; an -ERR greeting (server full, shutting down) makes the upstream unusable now. */
function checkGreeting(reply: Pop3Reply): string {
  if (!reply.ok) throw unavailable(`upstream refused the connection: ${clip(reply.text)}`);
  return reply.text;
}
