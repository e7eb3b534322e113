import type net from 'node:net';
import type tls from 'node:tls';
import type { UpstreamEndpoint } from '../config/schema.js';
import { isMailotpError } from '../core/errors.js';
import type { ClientInfo, VerifyResult } from '../core/login-types.js';
import type { Logger } from '../log/logger.js';
import { plainIp } from './client-address.js';
import type { ResponseReader } from './response-reader.js';
import { UpstreamClient, type UpstreamClientOptions, type UpstreamDialect } from './upstream-client.js';
import { clip, protocolError as protocol, unavailable } from './upstream-errors.js';
import { UpstreamSession } from './upstream-session.js';

/** What capabilities() answers while the upstream has never been reachable. */
export const DEFAULT_IMAP_CAPABILITIES: readonly string[] = ['IMAP4rev1', 'LITERAL+', 'SASL-IR', 'ID', 'ENABLE', 'IDLE'];

/**
 * Response codes of a tagged NO that mean "try again later" rather than "wrong password"
 * (RFC 5530; PRIVACYREQUIRED and CLIENTBUG are mailotp's or the operator's fault, not the user's).
 */
const TEMPORARY_CODES = new Set(['UNAVAILABLE', 'SERVERBUG', 'LIMIT', 'INUSE', 'PRIVACYREQUIRED', 'CLIENTBUG', 'CORRUPTION']);

/** Capabilities that describe mailotp's own link to the upstream, never what a client is offered. */
const LINK_ONLY_CAPABILITIES = new Set(['STARTTLS', 'LOGINDISABLED']);

export interface ImapUpstreamOptions extends UpstreamClientOptions {
  /** How long a capability list read from the upstream is served before a background refresh. */
  capabilityTtlMs?: number;
  /** 'login' skips AUTHENTICATE PLAIN, for upstreams whose SASL is broken (and for tests). */
  auth?: 'auto' | 'login';
}

/** ClientInfo plus, when the listener knows it, the address the client connected to. */
export type ImapClientInfo = ClientInfo & { localIp?: string; localPort?: number };

/** A logged-in IMAP session on the upstream, held while the phone decides, then spliced or closed. */
export class ImapUpstreamSession extends UpstreamSession {
  constructor(
    socket: net.Socket | tls.TLSSocket,
    /** What followed "<tag> OK " in the upstream's answer, e.g. "[CAPABILITY IMAP4rev1 ...] Logged in". */
    readonly loginResponseText: string,
    readonly postLoginCapabilities: string[] | null,
    buffered: Buffer,
    logoutTag: string,
  ) {
    super(socket, buffered, `${logoutTag} LOGOUT`);
  }
}

/** A command whose first part went out; its answer is still to be read. */
interface SentCommand {
  tag: string;
  first: string | Buffer | undefined;
  /** The parts that wait for a continuation each. */
  rest: (string | Buffer)[];
}

interface TaggedResponse {
  status: 'OK' | 'NO' | 'BAD';
  /** Everything after "<tag> <status> ". */
  text: string;
  untagged: string[];
}

/** One upstream connection's command/response exchange, with mailotp's own tags m1, m2, ... */
class ImapExchange {
  bye: string | null = null;

  constructor(
    readonly socket: net.Socket,
    readonly reader: ResponseReader,
    /** Shared across the STARTTLS boundary so no tag is used twice on one connection. */
    readonly tags: { n: number } = { n: 0 },
  ) {}

  nextTag(): string {
    this.tags.n += 1;
    return `m${this.tags.n}`;
  }

  /** Sends a command and reads up to its tagged answer (send, then answer). */
  command(parts: (string | Buffer)[], timeoutMs: number): Promise<TaggedResponse> {
    return this.answer(this.send(parts), timeoutMs);
  }

  /**
   * Sends a command's first part and returns at once, so that a second command can follow before
   * the first is answered (pipelining, RFC 9051 §5.5); `answer` reads the answers in order.
   */
  send(parts: (string | Buffer)[]): SentCommand {
    const tag = this.nextTag();
    const [first, ...rest] = parts;
    this.socket.write(Buffer.concat([Buffer.from(`${tag} `), toBuffer(first ?? ''), CRLF]));
    return { tag, first, rest };
  }

  /**
   * Reads up to the tagged answer of a sent command; each of its later parts goes out on a "+"
   * continuation (synchronizing literals, SASL responses). Each part ends in CRLF.
   */
  async answer(sent: SentCommand, timeoutMs: number): Promise<TaggedResponse> {
    const { tag, first, rest } = sent;
    const untagged: string[] = [];
    for (;;) {
      let line: string;
      try {
        line = await this.reader.readLine(timeoutMs);
      } catch (err) {
        if (this.bye !== null && isMailotpError(err, 'MAILOTP_ERR_UPSTREAM_UNAVAILABLE')) throw unavailable(`upstream said BYE: ${this.bye}`);
        throw err;
      }
      if (line.startsWith('* ')) {
        if (/^\* BYE\b/i.test(line)) this.bye = line.slice(6);
        untagged.push(line);
        continue;
      }
      if (line === '+' || line.startsWith('+ ')) {
        const next = rest.shift();
        if (next === undefined) throw protocol(`unexpected continuation request after ${commandName(first)}`);
        this.socket.write(Buffer.concat([toBuffer(next), CRLF]));
        continue;
      }
      if (line.startsWith(`${tag} `)) {
        const m = /^(OK|NO|BAD)(?: (.*))?$/is.exec(line.slice(tag.length + 1));
        if (!m) throw protocol(`malformed tagged response to ${commandName(first)}: ${clip(line)}`);
        return { status: m[1]!.toUpperCase() as TaggedResponse['status'], text: m[2] ?? '', untagged };
      }
      throw protocol(`unexpected line from upstream: ${clip(line)}`);
    }
  }
}

const CRLF = Buffer.from('\r\n');

function toBuffer(part: string | Buffer): Buffer {
  return typeof part === 'string' ? Buffer.from(part, 'utf8') : part;
}

function commandName(part: string | Buffer | undefined): string {
  // Only the verb: later words may be credentials.
  return toBuffer(part ?? '').toString('latin1').split(' ', 1)[0] ?? '';
}

/** The capability list inside "[CAPABILITY ...]" of a response text, or null. */
export function capabilitiesFromCode(text: string): string[] | null {
  const m = /^\[CAPABILITY ([^\]]*)\]/i.exec(text);
  return m ? splitCaps(m[1]!) : null;
}

function capabilitiesFromUntagged(lines: string[]): string[] | null {
  let caps: string[] | null = null;
  for (const line of lines) {
    const m = /^\* CAPABILITY (.*)$/i.exec(line);
    if (m) caps = splitCaps(m[1]!);
  }
  return caps;
}

function splitCaps(list: string): string[] {
  return list.split(' ').filter((c) => c !== '');
}

function hasCap(caps: readonly string[], cap: string): boolean {
  const want = cap.toUpperCase();
  return caps.some((c) => c.toUpperCase() === want);
}

/** The response code's atom ("[UNAVAILABLE] ..." -> "UNAVAILABLE"), upper-cased. */
function responseCode(text: string): string | null {
  const m = /^\[([^\s\]]+)/.exec(text);
  return m ? m[1]!.toUpperCase() : null;
}

/** An IMAP quoted string for ID values: 7-bit printable only, so anything else becomes '?'. */
function idString(value: string, max = 128): string {
  const clean = value.replace(/[^\x20-\x7e]/g, '?').slice(0, max);
  return `"${clean.replace(/[\\"]/g, '\\$&')}"`;
}

/**
 * LOGIN's two arguments as command parts: quoted strings when printable ASCII, literals otherwise
 * (non-synchronizing with LITERAL+, else each waits for "+").
 */
function loginParts(user: string, password: string, literalPlus: boolean): Buffer[] {
  const parts: Buffer[] = [];
  let current: Buffer[] = [Buffer.from('LOGIN ')];
  const add = (value: string, last: boolean) => {
    if (/^[\x20-\x7e]*$/.test(value)) {
      current.push(Buffer.from(`"${value.replace(/[\\"]/g, '\\$&')}"${last ? '' : ' '}`));
      return;
    }
    const bytes = Buffer.from(value, 'utf8');
    if (literalPlus) {
      current.push(Buffer.from(`{${bytes.length}+}\r\n`), bytes, Buffer.from(last ? '' : ' '));
      return;
    }
    current.push(Buffer.from(`{${bytes.length}}`));
    parts.push(Buffer.concat(current));
    current = [bytes, Buffer.from(last ? '' : ' ')];
  };
  add(user, false);
  add(password, true);
  parts.push(Buffer.concat(current));
  return parts;
}

/** The IMAP side of mailotp's upstream: checks passwords by logging in, and reports capabilities. */
/** IMAP's words for the shared upstream client: tagged commands, "* OK" greeting, STARTTLS, LOGOUT. */
const IMAP_DIALECT: UpstreamDialect<ImapExchange, string[] | null> = {
  component: 'imap-upstream',
  imapLiterals: true,
  starttlsVerb: 'STARTTLS',
  // Neither LOGIN nor SASL PLAIN can carry a NUL.
  unsendable: /\0/,
  // Tags count on across STARTTLS so none is used twice on one connection.
  link: (socket, reader, plain) => new ImapExchange(socket, reader, plain?.tags),
  greet: async (exchange, timeoutMs) => capabilitiesFromCode(checkGreeting(await exchange.reader.readLine(timeoutMs))),
  starttls: async (exchange, timeoutMs) => {
    const answer = await exchange.command(['STARTTLS'], timeoutMs);
    if (answer.status !== 'OK') throw unavailable(`upstream refused STARTTLS: ${answer.status} ${clip(answer.text)}`);
  },
  // The greeting's capabilities were those of the plain link; TLS may change them.
  resume: () => Promise.resolve(null),
  capabilityList: {
    fallback: DEFAULT_IMAP_CAPABILITIES,
    readLog: (caps) => [{ capabilities: caps.join(' ') }, 'upstream capabilities read'],
    failedMessage: 'cannot read the upstream IMAP capabilities; keeping the previous list',
  },
  goodbye: (exchange) => `${exchange.nextTag()} LOGOUT`,
};

/** The IMAP side of mailotp's upstream: checks passwords by logging in, and reports capabilities. */
export class ImapUpstream extends UpstreamClient<ImapExchange, string[] | null> {
  private readonly authMode: 'auto' | 'login';

  constructor(endpoint: UpstreamEndpoint, logger: Logger, opts: ImapUpstreamOptions = {}) {
    super(endpoint, logger, IMAP_DIALECT, opts, opts.capabilityTtlMs);
    this.authMode = opts.auth ?? 'auto';
  }

  protected async readCapabilities(): Promise<string[]> {
    const { link: exchange, greeting: greetingCaps } = await this.open();
    try {
      let caps = greetingCaps;
      if (!caps) {
        const r = await exchange.command(['CAPABILITY'], this.timeoutMs);
        caps = r.status === 'OK' ? (capabilitiesFromUntagged(r.untagged) ?? capabilitiesFromCode(r.text)) : null;
        if (!caps) throw protocol(`CAPABILITY answered ${r.status} ${clip(r.text)}`);
      }
      return caps.filter((c) => !LINK_ONLY_CAPABILITIES.has(c.toUpperCase()));
    } finally {
      this.quit(exchange);
    }
  }

  login(user: string, password: string, client: ImapClientInfo, signal?: AbortSignal): Promise<VerifyResult<ImapUpstreamSession>> {
    return this.loginFrame(user, password, client, signal, async ({ link: exchange, greeting: greetingCaps }, log) => {
      const timeout = this.timeoutMs;
      let caps = greetingCaps;
      if (!caps) {
        const r = await exchange.command(['CAPABILITY'], timeout);
        caps = capabilitiesFromUntagged(r.untagged) ?? capabilitiesFromCode(r.text) ?? [];
      }

      const authParts = this.authParts(user, password, caps);
      // ID goes first and the login right behind it, without waiting for ID's answer: one round
      // trip less. The upstream answers in order, so ID still applies before the login does.
      let id: SentCommand | null = null;
      if (hasCap(caps, 'ID')) {
        // With login_trusted_networks Dovecot takes these as the client's address for logging,
        // auth policy and rate limits instead of mailotp's own.
        // x-connected-* only when known: mailotp's own upstream-side address would be a lie.
        const fields = [
          ['name', client.name ?? 'mailotp'],
          ['x-originating-ip', plainIp(client.ip)],
          ['x-originating-port', String(client.port)],
          ['x-connected-ip', client.localIp === undefined ? '' : plainIp(client.localIp)],
          ['x-connected-port', client.localPort === undefined ? '' : String(client.localPort)],
        ].filter(([, v]) => v !== '');
        id = exchange.send([`ID (${fields.map(([k, v]) => `${idString(k!)} ${idString(v!)}`).join(' ')})`]);
      }
      const login = exchange.send(authParts);
      if (id) {
        const idAnswer = await exchange.answer(id, timeout);
        if (idAnswer.status !== 'OK') log.debug({ status: idAnswer.status, text: clip(idAnswer.text) }, 'upstream did not take ID');
      }

      const r = await exchange.answer(login, this.loginTimeoutMs);
      if (r.status === 'OK') {
        const buffered = exchange.reader.takeBuffered();
        const postCaps = capabilitiesFromCode(r.text) ?? capabilitiesFromUntagged(r.untagged);
        if (postCaps && hasCap(postCaps, 'UNAUTHENTICATE')) {
          // RFC 8437 would let the spliced client drop this login and log in as someone else
          // without a tap; mailotp cannot see inside the splice, so it refuses to splice at all.
          this.quit(exchange);
          log.error('the upstream offers UNAUTHENTICATE after login; refusing (disable it on the upstream)');
          return { kind: 'unavailable', reason: 'upstream offers UNAUTHENTICATE' };
        }
        log.debug('upstream login ok');
        return { kind: 'ok', session: new ImapUpstreamSession(exchange.socket, r.text, postCaps, buffered, exchange.nextTag()) };
      }
      this.quit(exchange);
      if (r.status === 'NO') {
        const code = responseCode(r.text);
        if (code !== null && TEMPORARY_CODES.has(code)) {
          log.warn({ text: clip(r.text) }, 'upstream refused the login temporarily');
          return { kind: 'unavailable', reason: `upstream: NO ${clip(r.text)}` };
        }
        log.debug({ text: clip(r.text) }, 'upstream refused the password');
        return { kind: 'bad-password', reply: r.text };
      }
      log.warn({ text: clip(r.text) }, 'upstream answered the login with BAD');
      return { kind: 'unavailable', reason: `upstream: BAD ${clip(r.text)}` };
    });
  }

  private authParts(user: string, password: string, caps: readonly string[]): (string | Buffer)[] {
    if (this.authMode === 'auto' && hasCap(caps, 'AUTH=PLAIN')) {
      const payload = Buffer.from(`\0${user}\0${password}`, 'utf8').toString('base64');
      return hasCap(caps, 'SASL-IR') ? [`AUTHENTICATE PLAIN ${payload}`] : ['AUTHENTICATE PLAIN', payload];
    }
    if (hasCap(caps, 'LOGINDISABLED')) throw unavailable('upstream offers neither AUTH=PLAIN nor LOGIN on this connection');
    return loginParts(user, password, hasCap(caps, 'LITERAL+'));
  }
}

/** Accepts "* OK"; PREAUTH (nothing to verify), BYE and anything else make the upstream unusable. */
function checkGreeting(line: string): string {
  const m = /^\* (OK|PREAUTH|BYE)\b ?(.*)$/i.exec(line);
  if (!m) throw protocol(`unexpected greeting from upstream: ${clip(line)}`);
  const kind = m[1]!.toUpperCase();
  if (kind === 'PREAUTH') throw unavailable('upstream greeted with PREAUTH, so it cannot check passwords');
  if (kind === 'BYE') throw unavailable(`upstream refused the connection: ${clip(m[2] ?? '')}`);
  return m[2] ?? '';
}
