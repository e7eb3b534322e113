import net from 'node:net';
import os from 'node:os';
import type tls from 'node:tls';
import type { UpstreamEndpoint } from '../config/schema.js';
import { MailotpError } from '../core/errors.js';
import type { ClientInfo, VerifyResult } from '../core/login-types.js';
import type { Logger } from '../log/logger.js';
import { connectUpstream, type ConnectObserver, type UpstreamObservers } from './connect-upstream.js';
import { CapabilityCache } from './capability-cache.js';
import { ResponseReader } from './response-reader.js';
import { endPolitely, UpstreamSession } from './upstream-session.js';

/** What extensions() answers while the upstream has never been reachable. */
export const DEFAULT_SMTP_EXTENSIONS: readonly string[] = ['PIPELINING', '8BITMIME', 'ENHANCEDSTATUSCODES'];

const DEFAULT_EXTENSION_TTL_MS = 5 * 60_000;
const DEFAULT_LOGIN_TIMEOUT_MS = 30_000;
/** After a failed refresh, how soon extensions() tries the upstream again. */
const EXTENSION_RETRY_MS = 30_000;

export interface SmtpUpstreamOptions extends UpstreamObservers {
  /** How long an EHLO list read from the upstream is served before a background refresh. */
  extensionTtlMs?: number;
  /** Wait for the answer to AUTH itself; password backends can be slower than the handshake. */
  loginTimeoutMs?: number;
  /** mailotp's own EHLO name on its connections to the upstream [os.hostname()]. */
  heloName?: string;
  /** 'login' uses AUTH LOGIN even when PLAIN is offered (for upstreams with a broken PLAIN, and tests). */
  auth?: 'auto' | 'login';
}

/** ClientInfo plus the name the client gave in EHLO/HELO, forwarded with XCLIENT. */
export type SmtpClientInfo = ClientInfo & { heloName?: string };

/** An SMTP session on the upstream right after its 235: the next command is the client's MAIL FROM. */
export class SmtpUpstreamSession extends UpstreamSession {
  constructor(socket: net.Socket | tls.TLSSocket, buffered: Buffer) {
    super(socket, buffered, 'QUIT');
  }
}

interface Reply {
  code: number;
  /** The text of each line, after "NNN-" / "NNN ". */
  lines: string[];
}

/** One upstream connection's command/reply exchange. */
class SmtpExchange {
  constructor(
    readonly socket: net.Socket,
    readonly reader: ResponseReader,
  ) {}

  async read(timeoutMs: number): Promise<Reply> {
    const lines: string[] = [];
    let code: number | undefined;
    for (;;) {
      const line = await this.reader.readLine(timeoutMs);
      const m = /^(\d{3})(?:([ -])(.*))?$/s.exec(line);
      if (!m || (code !== undefined && Number(m[1]) !== code)) throw protocol(`malformed reply line from upstream: ${clip(line)}`);
      code = Number(m[1]);
      lines.push(m[3] ?? '');
      if (m[2] !== '-') return { code, lines };
    }
  }

  /** Sends one line (CRLF added) and reads the reply. */
  async command(line: string, timeoutMs: number): Promise<Reply> {
    this.socket.write(`${line}\r\n`);
    return this.read(timeoutMs);
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

function describe(r: Reply): string {
  return clip(`${r.code} ${r.lines.join(' / ')}`);
}

/** The EHLO reply's extension lines (every line but the first, which names the server). */
function extensionLines(r: Reply): string[] {
  return r.lines.slice(1).map((l) => l.trim()).filter((l) => l !== '');
}

/** The parameters of an extension ("AUTH PLAIN LOGIN" -> ["PLAIN", "LOGIN"]), or null when not offered. */
function extension(lines: readonly string[], keyword: string): string[] | null {
  for (const line of lines) {
    const [word = '', ...params] = line.split(/\s+/);
    if (word.toUpperCase() === keyword) return params.map((p) => p.toUpperCase());
  }
  return null;
}

/** RFC 3461 xtext, which XCLIENT values use: "+", "=" and anything outside "!".."~" as +XX. */
export function xtext(value: string): string {
  let out = '';
  for (const byte of Buffer.from(value, 'utf8')) {
    out += byte >= 0x21 && byte <= 0x7e && byte !== 0x2b && byte !== 0x3d ? String.fromCharCode(byte) : `+${byte.toString(16).toUpperCase().padStart(2, '0')}`;
  }
  return out;
}

/** The XCLIENT ADDR form: IPv4 as is ("::ffff:" dropped), IPv6 with the "IPV6:" prefix. */
function xclientAddr(ip: string): string {
  const v4 = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(ip);
  if (v4) return v4[1]!;
  return net.isIPv6(ip) ? `IPV6:${ip}` : ip;
}

/** A name fit for our own EHLO: a host name, or the address literal RFC 5321 allows instead. */
function ownHeloName(name: string | undefined): string {
  const n = (name ?? os.hostname()).trim();
  return /^[A-Za-z0-9.-]{1,255}$/.test(n) ? n : '[127.0.0.1]';
}

/** The client's EHLO name as we may repeat it: printable ASCII without spaces, else none. */
function clientHelo(name: string | undefined): string | undefined {
  return name !== undefined && /^[\x21-\x7e]{1,255}$/.test(name) ? name : undefined;
}

/** The SMTP submission side of mailotp's upstream: checks passwords by logging in, and reports the EHLO list. */
export class SmtpUpstream {
  private readonly loginTimeoutMs: number;
  private readonly heloName: string;
  private readonly authMode: 'auto' | 'login';
  private readonly log: Logger;
  private readonly onConnect: ConnectObserver | undefined;
  private readonly extensionCache: CapabilityCache<string>;

  constructor(
    private readonly endpoint: UpstreamEndpoint,
    logger: Logger,
    opts: SmtpUpstreamOptions = {},
  ) {
    this.loginTimeoutMs = Math.max(opts.loginTimeoutMs ?? DEFAULT_LOGIN_TIMEOUT_MS, endpoint.connectTimeout);
    this.heloName = ownHeloName(opts.heloName);
    this.authMode = opts.auth ?? 'auto';
    this.onConnect = opts.onConnect;
    this.log = logger.child({ component: 'smtp-upstream', upstream: `${endpoint.host}:${endpoint.port}` });
    this.extensionCache = new CapabilityCache(() => this.fetchExtensions(), {
      ttlMs: opts.extensionTtlMs ?? DEFAULT_EXTENSION_TTL_MS,
      retryMs: EXTENSION_RETRY_MS,
      fallback: DEFAULT_SMTP_EXTENSIONS,
      logger: this.log,
      readLog: (lines) => [{ extensions: lines.join(', ') }, 'upstream EHLO read'],
      failedMessage: 'cannot read the upstream EHLO list; keeping the previous one',
    });
  }

  /** Reads the EHLO list once; an unreachable upstream only logs a warning. */
  start(): Promise<void> {
    return this.extensionCache.start();
  }

  /** No more background refreshes (shutdown). Sessions already handed out are not touched. */
  stop(): void {
    this.extensionCache.stop();
  }

  /** The upstream's EHLO extension lines as a TLS client sees them before AUTH ("SIZE 1000", "8BITMIME", ...). */
  extensions(): Promise<string[]> {
    return this.extensionCache.get();
  }

  private async fetchExtensions(): Promise<string[]> {
    const { exchange, ehlo } = await this.open();
    quit(exchange);
    return ehlo;
  }

  /**
   * Connects (doing STARTTLS first when configured), reads the greeting and says EHLO on the
   * connection the session will use. Returns that EHLO's extension lines.
   */
  private async open(signal?: AbortSignal, onSocket?: (socket: net.Socket) => void): Promise<{ exchange: SmtpExchange; ehlo: string[] }> {
    const timeout = this.endpoint.connectTimeout;
    const starttls = async (plain: net.Socket) => {
      const reader = new ResponseReader(plain, { imapLiterals: false });
      const link = new SmtpExchange(plain, reader);
      let answer: Reply;
      try {
        checkGreeting(await link.read(timeout));
        const ehlo = await link.command(`EHLO ${this.heloName}`, timeout);
        if (ehlo.code !== 250) throw unavailable(`upstream refused EHLO: ${describe(ehlo)}`);
        answer = await link.command('STARTTLS', timeout);
      } finally {
        reader.detach();
      }
      if (answer.code !== 220) throw unavailable(`upstream refused STARTTLS: ${describe(answer)}`);
      // Anything after the 220 was sent in clear and is no part of the TLS session (CVE-2011-0411).
      if (reader.takeBuffered().length > 0) throw protocol('upstream sent data after its STARTTLS answer');
    };
    const socket = await connectUpstream(this.endpoint, { signal, starttls: this.endpoint.tls === 'starttls' ? starttls : undefined, onConnect: this.onConnect });
    onSocket?.(socket);
    const exchange = new SmtpExchange(socket, new ResponseReader(socket, { imapLiterals: false }));
    try {
      // RFC 3207: after TLS there is no new greeting, and the client starts again with EHLO.
      if (this.endpoint.tls !== 'starttls') checkGreeting(await exchange.read(timeout));
      return { exchange, ehlo: await this.ehlo(exchange, this.heloName) };
    } catch (err) {
      socket.destroy();
      throw err;
    }
  }

  private async ehlo(exchange: SmtpExchange, name: string): Promise<string[]> {
    const r = await exchange.command(`EHLO ${name}`, this.endpoint.connectTimeout);
    if (r.code !== 250) throw unavailable(`upstream refused EHLO: ${describe(r)}`);
    return extensionLines(r);
  }

  async login(user: string, password: string, client: SmtpClientInfo, signal?: AbortSignal): Promise<VerifyResult<SmtpUpstreamSession>> {
    // What the client typed, as sent upstream; `user` in audit lines is the canonical name (core).
    const log = this.log.child({ typedUser: user, clientIp: client.ip });
    if (/[\0\r\n]/.test(user) || /[\0\r\n]/.test(password)) {
      // Neither SASL PLAIN nor LOGIN can carry these, so no upstream account can have them.
      return { kind: 'bad-password' };
    }
    let socket: net.Socket | undefined;
    // connectUpstream handles an abort until it returns; from then on the reads fail on destroy.
    const onAbort = () => socket?.destroy();
    signal?.addEventListener('abort', onAbort, { once: true });
    try {
      const opened = await this.open(signal, (s) => (socket = s));
      const exchange = opened.exchange;
      let ehlo = opened.ehlo;
      if (signal?.aborted) throw unavailable('aborted');
      const timeout = this.endpoint.connectTimeout;
      const helo = clientHelo(client.heloName);

      const xclient = extension(ehlo, 'XCLIENT');
      if (xclient) {
        // With login_trusted_networks (Dovecot) or smtpd_authorized_xclient_hosts (Postfix) the
        // upstream logs, rate-limits and writes the Received header for the client, not for mailotp.
        const offered = (name: string) => xclient.length === 0 || xclient.includes(name);
        const attrs: [string, string | undefined][] = [
          ['ADDR', xclientAddr(client.ip)],
          ['PORT', String(client.port)],
          ['HELO', helo],
          ['DESTADDR', client.localIp === undefined ? undefined : xclientAddr(client.localIp)],
          ['DESTPORT', client.localPort === undefined ? undefined : String(client.localPort)],
        ];
        const sent = attrs.filter(([k, v]) => v !== undefined && v !== '' && offered(k)).map(([k, v]) => `${k}=${xtext(v!)}`);
        const r = sent.length === 0 ? null : await exchange.command(`XCLIENT ${sent.join(' ')}`, timeout);
        if (r && r.code >= 200 && r.code < 300) {
          // XCLIENT starts a new session: a 220 greeting, then EHLO again (Postfix XCLIENT_README).
          ehlo = await this.ehlo(exchange, helo ?? this.heloName);
        } else if (r) {
          log.warn({ reply: describe(r) }, 'upstream refused XCLIENT; it will see mailotp as the client (add mailotp to its trusted networks)');
        }
      }
      this.extensionCache.set(ehlo);

      const r = await this.authenticate(exchange, user, password, ehlo);
      if (r.code === 235) {
        log.debug('upstream login ok');
        return { kind: 'ok', session: new SmtpUpstreamSession(exchange.socket, exchange.reader.takeBuffered()) };
      }
      quit(exchange);
      const text = r.lines.join(' ');
      if (r.code >= 400 && r.code < 500) {
        log.warn({ reply: describe(r) }, 'upstream refused the login temporarily');
        return { kind: 'unavailable', reason: `upstream: ${describe(r)}` };
      }
      if (MAILOTP_FAULT.has(r.code)) {
        // Not the user's password: our link or our command is what the upstream objects to.
        log.error({ reply: describe(r) }, 'upstream refused AUTH for a reason that is not the password');
        return { kind: 'unavailable', reason: `upstream: ${describe(r)}` };
      }
      log.debug({ reply: describe(r) }, 'upstream refused the password');
      return { kind: 'bad-password', reply: `${r.code} ${text}` };
    } catch (err) {
      socket?.destroy();
      const reason = signal?.aborted ? 'aborted' : (err as Error).message;
      if (!signal?.aborted) log.warn({ err: reason }, 'upstream login failed');
      return { kind: 'unavailable', reason };
    } finally {
      signal?.removeEventListener('abort', onAbort);
    }
  }

  /** AUTH PLAIN with an initial response, or AUTH LOGIN step by step; the final reply. */
  private async authenticate(exchange: SmtpExchange, user: string, password: string, ehlo: readonly string[]): Promise<Reply> {
    const mechanisms = extension(ehlo, 'AUTH') ?? [];
    const timeout = this.loginTimeoutMs;
    const b64 = (s: string) => Buffer.from(s, 'utf8').toString('base64');
    let steps: string[];
    let first: string;
    if (this.authMode === 'auto' && mechanisms.includes('PLAIN')) {
      first = `AUTH PLAIN ${b64(`\0${user}\0${password}`)}`;
      // A server that ignores the initial response asks with an empty 334; it gets it again.
      steps = [b64(`\0${user}\0${password}`)];
    } else if (mechanisms.includes('LOGIN')) {
      first = 'AUTH LOGIN';
      steps = [b64(user), b64(password)];
    } else {
      throw unavailable(`upstream offers neither AUTH PLAIN nor LOGIN (AUTH ${mechanisms.join(' ') || 'missing'})`);
    }
    let r = await exchange.command(first, timeout);
    while (r.code === 334) {
      const next = steps.shift();
      if (next === undefined) {
        exchange.socket.write('*\r\n');
        await exchange.read(timeout).catch(() => undefined);
        throw protocol('upstream asked for more than the credentials');
      }
      r = await exchange.command(next, timeout);
    }
    return r;
  }
}

/**
 * Permanent AUTH refusals that are about mailotp's link, not the password: syntax (500-504),
 * "encryption required" (530, 538), "mechanism too weak" (534).
 */
const MAILOTP_FAULT = new Set([500, 501, 502, 503, 504, 530, 534, 538]);

/** Ends a connection that will not be used: QUIT, without waiting for the answer. */
function quit(exchange: SmtpExchange): void {
  exchange.reader.detach();
  endPolitely(exchange.socket, 'QUIT');
}

/** Accepts 220; 554 ("no service here") and anything else make the upstream unusable. */
function checkGreeting(r: Reply): void {
  if (r.code === 220) return;
  throw unavailable(`upstream greeting refused the connection: ${describe(r)}`);
}
