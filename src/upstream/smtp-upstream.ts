import type net from 'node:net';
import os from 'node:os';
import type tls from 'node:tls';
import type { UpstreamEndpoint } from '../config/schema.js';
import type { ClientInfo, VerifyResult } from '../core/login-types.js';
import type { Logger } from '../log/logger.js';
import { xclientAddr } from './client-address.js';
import type { ResponseReader } from './response-reader.js';
import { UpstreamClient, type UpstreamClientOptions, type UpstreamDialect } from './upstream-client.js';
import { clip, protocolError as protocol, unavailable } from './upstream-errors.js';
import { UpstreamSession } from './upstream-session.js';

/** What extensions() answers while the upstream has never been reachable. */
export const DEFAULT_SMTP_EXTENSIONS: readonly string[] = ['PIPELINING', '8BITMIME', 'ENHANCEDSTATUSCODES'];

export interface SmtpUpstreamOptions extends UpstreamClientOptions {
  /** How long an EHLO list read from the upstream is served before a background refresh. */
  extensionTtlMs?: number;
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

/** A name fit for our own EHLO: a host name, or the address literal RFC 5321 allows instead. */
function ownHeloName(name: string | undefined): string {
  const n = (name ?? os.hostname()).trim();
  return /^[A-Za-z0-9.-]{1,255}$/.test(n) ? n : '[127.0.0.1]';
}

/** The client's EHLO name as we may repeat it: printable ASCII without spaces, else none. */
function clientHelo(name: string | undefined): string | undefined {
  return name !== undefined && /^[\x21-\x7e]{1,255}$/.test(name) ? name : undefined;
}

/**
 * SMTP's words for the shared upstream client: a 220 greeting followed by our EHLO, whose extension
 * lines stand for the greeting; STARTTLS; QUIT. After STARTTLS there is no new greeting, and the
 * client starts again with EHLO (RFC 3207).
 */
function smtpDialect(heloName: string): UpstreamDialect<SmtpExchange, string[]> {
  return {
    component: 'smtp-upstream',
    imapLiterals: false,
    starttlsVerb: 'STARTTLS',
    // Neither SASL PLAIN nor LOGIN can carry these.
    unsendable: /[\0\r\n]/,
    link: (socket, reader) => new SmtpExchange(socket, reader),
    greet: async (exchange, timeoutMs) => {
      checkGreeting(await exchange.read(timeoutMs));
      return ehlo(exchange, heloName, timeoutMs);
    },
    starttls: async (exchange, timeoutMs) => {
      const answer = await exchange.command('STARTTLS', timeoutMs);
      if (answer.code !== 220) throw unavailable(`upstream refused STARTTLS: ${describe(answer)}`);
    },
    resume: (exchange, _plainEhlo, timeoutMs) => ehlo(exchange, heloName, timeoutMs),
    capabilityList: {
      fallback: DEFAULT_SMTP_EXTENSIONS,
      readLog: (lines) => [{ extensions: lines.join(', ') }, 'upstream EHLO read'],
      failedMessage: 'cannot read the upstream EHLO list; keeping the previous one',
    },
    goodbye: () => 'QUIT',
  };
}

/** Says EHLO; the extension lines of the answer. */
async function ehlo(exchange: SmtpExchange, name: string, timeoutMs: number): Promise<string[]> {
  const r = await exchange.command(`EHLO ${name}`, timeoutMs);
  if (r.code !== 250) throw unavailable(`upstream refused EHLO: ${describe(r)}`);
  return extensionLines(r);
}

/** The SMTP submission side of mailotp's upstream: checks passwords by logging in, and reports the EHLO list. */
export class SmtpUpstream extends UpstreamClient<SmtpExchange, string[]> {
  private readonly heloName: string;
  private readonly authMode: 'auto' | 'login';

  constructor(endpoint: UpstreamEndpoint, logger: Logger, opts: SmtpUpstreamOptions = {}) {
    const heloName = ownHeloName(opts.heloName);
    super(endpoint, logger, smtpDialect(heloName), opts, opts.extensionTtlMs);
    this.heloName = heloName;
    this.authMode = opts.auth ?? 'auto';
  }

  /** The upstream's EHLO extension lines as a TLS client sees them before AUTH ("SIZE 1000", "8BITMIME", ...). */
  extensions(): Promise<string[]> {
    return this.capabilities();
  }

  protected async readCapabilities(): Promise<string[]> {
    const { link, greeting: extensions } = await this.open();
    this.quit(link);
    return extensions;
  }

  login(user: string, password: string, client: SmtpClientInfo, signal?: AbortSignal): Promise<VerifyResult<SmtpUpstreamSession>> {
    return this.loginFrame(user, password, client, signal, async ({ link: exchange, greeting }, log) => {
      let extensions = greeting;
      const helo = clientHelo(client.heloName);

      const xclient = extension(extensions, 'XCLIENT');
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
        const r = sent.length === 0 ? null : await exchange.command(`XCLIENT ${sent.join(' ')}`, this.timeoutMs);
        if (r && r.code >= 200 && r.code < 300) {
          // XCLIENT starts a new session: a 220 greeting, then EHLO again (Postfix XCLIENT_README).
          extensions = await ehlo(exchange, helo ?? this.heloName, this.timeoutMs);
        } else if (r) {
          log.warn({ reply: describe(r) }, 'upstream refused XCLIENT; it will see mailotp as the client (add mailotp to its trusted networks)');
        }
      }
      this.capabilityCache.set(extensions);

      const r = await this.authenticate(exchange, user, password, extensions);
      if (r.code === 235) {
        log.debug('upstream login ok');
        return { kind: 'ok', session: new SmtpUpstreamSession(exchange.socket, exchange.reader.takeBuffered()) };
      }
      this.quit(exchange);
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
    });
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

/** Accepts 220; 554 ("no service here") and anything else make the upstream unusable. */
function checkGreeting(r: Reply): void {
  if (r.code === 220) return;
  throw unavailable(`upstream greeting refused the connection: ${describe(r)}`);
}
