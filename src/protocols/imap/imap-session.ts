import type net from 'node:net';
import tls from 'node:tls';
import type { ClientInfo, LoginAttempt, LoginResult } from '../../core/login-types.js';
import type { Logger } from '../../log/logger.js';
import type { MailSessionDeps, SplicedUpstream } from '../shared/session-deps.js';
import { astringBytes, checkCredentials, clientNameFromId, SaslExchange, saslMechanism, type SaslOutcome } from './imap-auth.js';
import { clientCapabilities } from './imap-capabilities.js';
import { ClientConnection } from '../shared/client-connection.js';
import { ImapCommandReader, maskForLog, type ImapCommand, type ImapReadError } from './imap-command-reader.js';
import { IMAP_AUTH_FAILED, IMAP_PROGRESS_LINE, imapLoginReply, isFailedLogin } from './imap-replies.js';

export interface ImapUpstreamLike extends SplicedUpstream {
  loginResponseText: string; // what followed "tag OK " upstream, e.g. "[CAPABILITY IMAP4rev1 IDLE ...] Logged in"
}

export interface ImapSessionDeps extends MailSessionDeps<ImapUpstreamLike> {
  /** The upstream's pre-login capabilities (cached by the caller). */
  upstreamCapabilities(): Promise<string[]>;
  progressIntervalMs: number; // "* OK Waiting for approval on your phone" cadence (10 s default)
}

/**
 * Serves one client connection until it logs in (then hands it to deps.splice) or goes away.
 * Resolves when the connection is over, including any login still in flight and the splice.
 * With mode 'implicit' the socket may be a TLSSocket already secured by the listener, or a plain
 * socket this function performs the TLS handshake on.
 */
export function handleImapConnection(
  socket: net.Socket | tls.TLSSocket,
  mode: 'implicit' | 'starttls' | 'none',
  client: ClientInfo,
  deps: ImapSessionDeps,
): Promise<void> {
  return new ImapSession(socket, mode, client, deps).run();
}

type State = 'greeting' | 'ready' | 'sasl' | 'login' | 'tls' | 'closing' | 'done' | 'spliced';

class ImapSession {
  private readonly conn: ClientConnection;
  private secure: boolean;
  private state: State = 'greeting';
  private reader: ImapCommandReader;
  private upstreamCaps: string[] = [];
  private clientName: string | undefined;
  private commands = 0;
  private failures = 0;
  private sasl: { tag: string; exchange: SaslExchange } | undefined;
  private idleTimer: NodeJS.Timeout | undefined;
  private progressTimer: NodeJS.Timeout | undefined;
  private loginAbort: AbortController | undefined;
  private loginDone: Promise<void> = Promise.resolve();
  private resolveRun!: () => void;
  private readonly log: Logger;

  constructor(
    socket: net.Socket,
    private readonly mode: 'implicit' | 'starttls' | 'none',
    private readonly client: ClientInfo,
    private readonly deps: ImapSessionDeps,
  ) {
    this.log = deps.logger;
    this.secure = socket instanceof tls.TLSSocket;
    this.reader = this.newReader();
    this.conn = new ClientConnection(socket, this.log, {
      data: (chunk) => this.onData(chunk),
      end: () => this.close(),
      closed: () => this.onClosed(),
    });
  }

  run(): Promise<void> {
    const finished = new Promise<void>((resolve) => (this.resolveRun = resolve));
    this.conn.start();
    if (this.state === 'done') return finished;
    this.touch();
    if (this.mode === 'implicit' && !this.secure) this.startTls(true);
    else void this.greet();
    return finished;
  }

  private onData(chunk: Buffer): void {
    if (this.state !== 'greeting' && this.state !== 'ready' && this.state !== 'sasl' && this.state !== 'login') return;
    this.reader.push(chunk);
    if (this.state === 'ready' || this.state === 'sasl') this.pump();
    // Bytes pipelined behind a login are kept for the upstream; past one command's worth the
    // socket is paused (TCP backpressure) rather than buffering without bound.
    else if (this.reader.buffered > this.deps.limits.maxLineLength + 2 * this.deps.limits.maxLiteralSize) this.conn.pause();
  }

  private onClosed(): void {
    if (this.state === 'spliced' || this.state === 'done') return;
    this.state = 'done';
    this.clearTimers();
    this.loginAbort?.abort();
    // The run is over only once a login in flight has settled (and released its upstream).
    void this.loginDone.then(() => this.resolveRun());
  }

  private send(line: string): void {
    this.conn.send(line);
  }

  /** Says goodbye and ends the connection; the 'close' event then finishes the session. */
  private close(bye?: string): void {
    if (this.state === 'closing' || this.state === 'done' || this.state === 'spliced') return;
    if (bye !== undefined && this.state !== 'tls') this.send(`* BYE ${bye}`);
    this.state = 'closing';
    this.clearTimers();
    this.loginAbort?.abort();
    this.conn.end();
  }

  private touch(): void {
    if (this.idleTimer) clearTimeout(this.idleTimer);
    this.idleTimer = setTimeout(() => {
      this.idleTimer = undefined;
      this.log.debug({ state: this.state }, 'imap pre-login idle timeout');
      if (this.state === 'tls') this.conn.destroy();
      else this.close('Idle timeout');
    }, this.deps.limits.preLoginIdleTimeout);
  }

  private clearTimers(): void {
    if (this.idleTimer) clearTimeout(this.idleTimer);
    if (this.progressTimer) clearInterval(this.progressTimer);
    this.idleTimer = this.progressTimer = undefined;
  }

  private newReader(): ImapCommandReader {
    return new ImapCommandReader({
      maxLineLength: this.deps.limits.maxLineLength,
      maxLiteralSize: this.deps.limits.maxLiteralSize,
      onContinuationNeeded: () => this.send('+ Ready for literal data'),
    });
  }

  private capabilities(): string {
    return clientCapabilities(this.upstreamCaps, { beforeStartTls: this.mode === 'starttls' && !this.secure }).join(' ');
  }

  private async greet(): Promise<void> {
    try {
      this.upstreamCaps = await this.deps.upstreamCapabilities();
    } catch (err) {
      this.log.warn({ err }, 'upstream IMAP capabilities unavailable; advertising only mailotp own');
    }
    if (this.state !== 'greeting') return;
    this.send(`* OK [CAPABILITY ${this.capabilities()}] mailotp ready.`);
    this.becomeReady();
  }

  private becomeReady(): void {
    this.state = 'ready';
    this.conn.resume();
    this.touch();
    this.pump();
  }

  private startTls(greetAfter: boolean): void {
    this.state = 'tls';
    // RFC 3207 / CVE-2011-0411: plaintext pipelined behind STARTTLS is never executed.
    this.reader.clear();
    this.conn.upgrade(this.deps.tls.serverOptions(), (socket) => {
      if (this.state !== 'tls') return;
      this.secure = true;
      this.reader = this.newReader();
      this.log.debug({ tlsVersion: socket.getProtocol() }, 'imap TLS established');
      if (!greetAfter) return this.becomeReady();
      this.state = 'greeting';
      void this.greet();
    });
  }

  // ---- commands --------------------------------------------------------------------------

  private pump(): void {
    for (;;) {
      if (this.state === 'ready') {
        const r = this.reader.next();
        if (!r) return;
        if (r.type === 'error') this.onReadError(r.error);
        else this.onCommand(r.command);
      } else if (this.state === 'sasl') {
        const r = this.reader.nextLine();
        if (!r) return;
        if (r.type === 'error') this.onReadError(r.error);
        else this.onSaslLine(r.line.raw);
      } else {
        return;
      }
    }
  }

  private onReadError(error: ImapReadError): void {
    if (error.kind === 'line-too-long') {
      this.log.debug('imap line too long');
      this.send('* BAD Line too long');
      return this.close('Closing connection');
    }
    if (error.kind === 'literal-too-large' && error.fatal) return this.close('Literal too large');
    if (!this.countCommand()) return;
    this.touch();
    const tag = error.tag ?? '*';
    this.send(`${tag} BAD ${error.kind === 'literal-too-large' ? 'Literal too large' : error.message}`);
  }

  /** false when the pre-login command cap is hit (and the connection is being closed). */
  private countCommand(): boolean {
    this.commands++;
    if (this.commands <= this.deps.limits.maxCommandsBeforeLogin) return true;
    this.close('Too many commands');
    return false;
  }

  private onCommand(cmd: ImapCommand): void {
    if (!this.countCommand()) return;
    this.touch();
    this.log.debug({ command: cmd.name.slice(0, 32) }, 'imap command');
    if (this.log.isLevelEnabled('trace')) this.log.trace({ line: maskForLog(cmd) }, 'imap <');
    const { tag, name, args } = cmd;
    switch (name) {
      case 'CAPABILITY':
      case 'NOOP':
      case 'LOGOUT':
      case 'STARTTLS':
        if (args.length > 0) return this.send(`${tag} BAD Unexpected arguments`);
        return this.simple(tag, name);
      case 'ID': {
        const clientName = clientNameFromId(args);
        if (clientName === null) return this.send(`${tag} BAD Invalid ID arguments`);
        if (clientName !== undefined) this.clientName = clientName;
        this.send('* ID ("name" "mailotp")');
        return this.send(`${tag} OK ID completed`);
      }
      case 'LOGIN':
        return this.login(tag, cmd);
      case 'AUTHENTICATE':
        return this.authenticate(tag, cmd);
      default:
        return this.send(`${tag} BAD Command not valid before login`);
    }
  }

  private simple(tag: string, name: 'CAPABILITY' | 'NOOP' | 'LOGOUT' | 'STARTTLS'): void {
    switch (name) {
      case 'CAPABILITY':
        this.send(`* CAPABILITY ${this.capabilities()}`);
        return this.send(`${tag} OK CAPABILITY completed`);
      case 'NOOP':
        return this.send(`${tag} OK NOOP completed`);
      case 'LOGOUT':
        this.send('* BYE Logging out');
        this.send(`${tag} OK LOGOUT completed`);
        return this.close();
      case 'STARTTLS':
        if (this.mode !== 'starttls' || this.secure) return this.send(`${tag} BAD STARTTLS not available`);
        this.send(`${tag} OK Begin TLS negotiation now`);
        return this.startTls(false);
    }
  }

  /** On a STARTTLS port nothing secret may travel before TLS. */
  private refuseCleartext(tag: string): boolean {
    if (this.mode !== 'starttls' || this.secure) return false;
    this.send(`${tag} NO [PRIVACYREQUIRED] Use STARTTLS first.`);
    return true;
  }

  private login(tag: string, cmd: ImapCommand): void {
    if (this.refuseCleartext(tag)) return;
    const user = astringBytes(cmd.args[0]);
    const password = astringBytes(cmd.args[1]);
    if (cmd.args.length !== 2 || !user || !password) return this.send(`${tag} BAD Invalid arguments`);
    this.startLogin(tag, user, password);
  }

  private authenticate(tag: string, cmd: ImapCommand): void {
    if (this.refuseCleartext(tag)) return;
    const [mechArg, initial] = cmd.args;
    if (mechArg?.type !== 'atom' || cmd.args.length > 2 || (initial && initial.type !== 'atom')) {
      return this.send(`${tag} BAD Invalid arguments`);
    }
    const mechanism = saslMechanism(mechArg.value);
    if (!mechanism) return this.send(`${tag} NO Unsupported authentication mechanism`);
    this.sasl = { tag, exchange: new SaslExchange(mechanism) };
    this.onSaslOutcome(this.sasl.exchange.start(initial?.value));
  }

  private onSaslLine(raw: Buffer): void {
    if (!this.sasl) return;
    this.touch();
    if (this.log.isLevelEnabled('trace')) this.log.trace({ line: maskForLog({ continuation: true, raw }) }, 'imap <');
    this.onSaslOutcome(this.sasl.exchange.respond(raw.toString('latin1')));
  }

  private onSaslOutcome(outcome: SaslOutcome): void {
    const tag = this.sasl?.tag ?? '*';
    if (outcome.type === 'challenge') {
      this.state = 'sasl';
      return this.send(outcome.line);
    }
    this.sasl = undefined;
    this.state = 'ready';
    if (outcome.type === 'bad') return this.send(`${tag} BAD ${outcome.text}`);
    if (outcome.type === 'refused') return this.refuseLogin(tag, outcome.text, outcome.why);
    this.startLogin(tag, outcome.user, outcome.password);
  }

  /** A login refused here, without asking the core; it still counts as a failed login. */
  private refuseLogin(tag: string, reply: string, why: string): void {
    this.log.debug({ why }, 'imap login refused locally');
    this.send(`${tag} ${reply}`);
    this.countFailure();
  }

  /**
   * Closes after the Nth failure rather than refusing the N+1th attempt: that attempt would cost
   * one more password check upstream, which is what the limit is there to prevent.
   */
  private countFailure(): void {
    this.failures++;
    if (this.failures >= this.deps.limits.maxFailedLoginsPerConnection) this.close('Too many failed logins');
  }

  // ---- login -----------------------------------------------------------------------------

  private startLogin(tag: string, userBytes: Buffer, passwordBytes: Buffer): void {
    const creds = checkCredentials(userBytes, passwordBytes);
    if (!creds.ok) return this.refuseLogin(tag, IMAP_AUTH_FAILED, creds.why);
    this.state = 'login';
    if (this.idleTimer) clearTimeout(this.idleTimer);
    this.idleTimer = undefined;
    this.loginDone = this.runLogin(tag, creds.user, creds.password).catch((err: unknown) => {
      this.log.error({ err }, 'imap login handling failed');
      this.conn.destroy();
    });
  }

  private async runLogin(tag: string, user: string, password: string): Promise<void> {
    const abort = new AbortController();
    this.loginAbort = abort;
    const client: ClientInfo = { ...this.client, name: this.clientName };
    const attempt: LoginAttempt<ImapUpstreamLike> = {
      protocol: 'imap',
      user,
      password,
      clientIp: this.client.ip,
      clientName: this.clientName,
      verify: () => this.deps.upstreamLogin(user, password, client, abort.signal),
      onHold: () => {
        if (this.progressTimer || this.state !== 'login') return;
        this.progressTimer = setInterval(() => {
          if (this.state === 'login') this.send(IMAP_PROGRESS_LINE);
        }, this.deps.progressIntervalMs);
      },
      signal: abort.signal,
    };
    let result: LoginResult<ImapUpstreamLike>;
    try {
      result = await this.deps.authorize(attempt);
    } catch (err) {
      this.log.error({ err }, 'authorize threw; refusing the login as temporary');
      result = { kind: 'unavailable', reason: 'internal error' };
    } finally {
      if (this.progressTimer) clearInterval(this.progressTimer);
      this.progressTimer = undefined;
      this.loginAbort = undefined;
    }
    this.log.debug({ result: result.kind }, 'imap login answered');
    if (this.state !== 'login') {
      // The client left while the core decided: an upstream session handed to us is ours to end.
      if (result.kind === 'approved') result.session.close();
      return;
    }
    const reply = imapLoginReply(result);
    if (result.kind === 'approved') return this.spliceTo(`${tag} ${reply ?? 'OK'}`, result.session);
    // 'aborted' while the client is still here: nothing sensible to say, so hang up.
    if (reply === null) return this.close();
    this.send(`${tag} ${reply}`);
    if (isFailedLogin(result.kind)) {
      this.countFailure();
      if (this.state !== 'login') return;
    }
    this.becomeReady();
  }

  private async spliceTo(okLine: string, upstream: ImapUpstreamLike): Promise<void> {
    this.send(okLine);
    this.state = 'spliced';
    this.clearTimers();
    const socket = this.conn.handOver();
    const clientBuffered = this.reader.takeRemaining();
    try {
      await this.deps.splice(socket, upstream.socket, { clientBuffered, upstreamBuffered: upstream.buffered });
    } catch (err) {
      this.log.warn({ err }, 'imap splice failed');
      socket.destroy();
      upstream.close();
    } finally {
      this.resolveRun();
    }
  }
}
