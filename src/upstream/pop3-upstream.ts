import net from 'node:net';
import type tls from 'node:tls';
import type { UpstreamEndpoint } from '../config/schema.js';
import type { ClientInfo, VerifyResult } from '../core/login-types.js';
import type { Logger } from '../log/logger.js';
import { plainIp } from './client-address.js';
import type { ResponseReader } from './response-reader.js';
import { UpstreamClient, type UpstreamClientOptions, type UpstreamDialect } from './upstream-client.js';
import { clip, protocolError as protocol, unavailable } from './upstream-errors.js';
import { UpstreamSession } from './upstream-session.js';

/** What capabilities() answers while the upstream has never been reachable. */
export const DEFAULT_POP3_CAPABILITIES: readonly string[] = ['TOP', 'UIDL'];

/**
 * -ERR codes that mean "not now" rather than "wrong password" (RFC 2449, RFC 3206). The client
 * sees the upstream's own line: "[IN-USE] Mailbox is locked" tells the user more than ours would.
 */
const TEMPORARY_CODES = new Set(['IN-USE', 'SYS/TEMP', 'LOGIN-DELAY', 'SYS/PERM']);

/** A CAPA answer longer than this is not a capability list. */
const MAX_CAPA_LINES = 100;

export interface Pop3UpstreamOptions extends UpstreamClientOptions {
  /** How long a CAPA list read from the upstream is served before a background refresh. */
  capabilityTtlMs?: number;
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

function capaTag(line: string): string {
  return (line.split(' ', 1)[0] ?? '').toUpperCase();
}

/** The SASL mechanisms of a CAPA list, upper-cased. */
function saslMechanisms(caps: readonly string[]): string[] {
  const line = caps.find((c) => capaTag(c) === 'SASL');
  return line ? line.split(' ').slice(1).map((m) => m.toUpperCase()) : [];
}

/** An -ERR to the login: the upstream's words, as a temporary refusal or a wrong password. */
function refusal(text: string): VerifyResult<Pop3UpstreamSession> {
  const code = /^\[([^\]\s]+)\]/.exec(text)?.[1]?.toUpperCase();
  if (code !== undefined && TEMPORARY_CODES.has(code)) return { kind: 'unavailable', reason: `upstream: -ERR ${clip(text)}`, reply: text };
  return { kind: 'bad-password', reply: text };
}

/** POP3's words for the shared upstream client: "+OK" greeting, STLS, QUIT. The greeting's text is kept. */
const POP3_DIALECT: UpstreamDialect<Pop3Exchange, string> = {
  component: 'pop3-upstream',
  imapLiterals: false,
  starttlsVerb: 'STLS',
  // No POP3 command or SASL PLAIN message can carry these.
  unsendable: /[\0\r\n]/,
  link: (socket, reader) => new Pop3Exchange(socket, reader),
  greet: async (exchange, timeoutMs) => checkGreeting(await exchange.status(timeoutMs, 'the connection')),
  starttls: async (exchange, timeoutMs) => {
    const answer = await exchange.command('STLS', timeoutMs);
    if (!answer.ok) throw unavailable(`upstream refused STLS: ${clip(answer.text)}`);
  },
  capabilityList: {
    fallback: DEFAULT_POP3_CAPABILITIES,
    readLog: (caps) => [{ capabilities: caps.join(', ') }, 'upstream CAPA read'],
    failedMessage: 'cannot read the upstream POP3 CAPA; keeping the previous list',
  },
  goodbye: () => 'QUIT',
};

/** The POP3 side of mailotp's upstream: checks passwords by logging in, and reports CAPA. */
export class Pop3Upstream extends UpstreamClient<Pop3Exchange, string> {
  private readonly authMode: 'auto' | 'user';

  constructor(endpoint: UpstreamEndpoint, logger: Logger, opts: Pop3UpstreamOptions = {}) {
    super(endpoint, logger, POP3_DIALECT, opts, opts.capabilityTtlMs);
    this.authMode = opts.auth ?? 'auto';
  }

  protected async readCapabilities(): Promise<string[]> {
    const { link: exchange } = await this.open();
    try {
      const caps = await this.capa(exchange);
      if (!caps) throw protocol('upstream refused CAPA');
      return caps.filter((c) => capaTag(c) !== 'STLS');
    } finally {
      this.quit(exchange);
    }
  }

  /** CAPA's lines, or null when the upstream does not know CAPA (RFC 1939 servers). */
  private async capa(exchange: Pop3Exchange): Promise<string[] | null> {
    const timeout = this.timeoutMs;
    const r = await exchange.command('CAPA', timeout);
    return r.ok ? exchange.multiline(timeout) : null;
  }

  login(user: string, password: string, client: ClientInfo, signal?: AbortSignal): Promise<VerifyResult<Pop3UpstreamSession>> {
    return this.loginFrame(user, password, client, signal, async ({ link: exchange, greeting }, log) => {
      const timeout = this.timeoutMs;
      const caps = await this.capa(exchange);

      // Dovecot (2.3) offers XCLIENT only to login_trusted_networks, and only as "[XCLIENT]" in the
      // greeting, not in CAPA. Sent only when offered: other servers count it as a bad command.
      const ip = plainIp(client.ip);
      const offered = /^\[XCLIENT\]/i.test(greeting) || (caps ?? []).some((c) => capaTag(c) === 'XCLIENT');
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
      this.quit(exchange);
      const result = refusal(r.text);
      if (result.kind === 'unavailable') log.warn({ text: clip(r.text) }, 'upstream refused the login temporarily');
      else log.debug({ text: clip(r.text) }, 'upstream refused the password');
      return result;
    });
  }
}

/** Accepts "+OK"; an -ERR greeting (server full, shutting down) makes the upstream unusable now. */
function checkGreeting(reply: Pop3Reply): string {
  if (!reply.ok) throw unavailable(`upstream refused the connection: ${clip(reply.text)}`);
  return reply.text;
}
