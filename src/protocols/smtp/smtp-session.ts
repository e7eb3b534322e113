import type net from 'node:net';
import tls from 'node:tls';
import type { ClientInfo, LoginAttempt, LoginResult } from '../../core/login-types.js';
import type { Logger } from '../../log/logger.js';
import { checkCredentials } from '../shared/sasl.js';
import type { MailSessionDeps, SplicedUpstream } from '../shared/session-deps.js';
import { ClientConnection } from '../shared/client-connection.js';
import { SmtpSaslExchange, smtpSaslMechanism, type SmtpSaslOutcome } from './smtp-auth.js';
import { loggableVerb, maskForLog, parseCommand, SmtpCommandReader, type SmtpCommand } from './smtp-command-reader.js';
import { clientExtensions, ehloReply } from './smtp-extensions.js';
import { isFailedLogin, SMTP_AUTH_FAILED, SMTP_AUTH_REQUIRED, SMTP_STARTTLS_FIRST, smtpLoginReply } from './smtp-replies.js';

export interface SmtpUpstreamLike extends SplicedUpstream {
  /** false when the upstream is known to have gone while the login was held. */
  readonly alive?: boolean;
}

export type SmtpClientInfo = ClientInfo & { heloName?: string };

export interface SmtpSessionDeps extends MailSessionDeps<SmtpUpstreamLike, SmtpClientInfo> {
  /** The upstream's EHLO extension lines (cached by the caller). */
  upstreamExtensions(): Promise<string[]>;
  /** The name in the greeting and the EHLO reply. */
  hostname: string;
}

/**
 * Serves one SMTP client connection until AUTH succeeds (then hands it to deps.splice) or it goes
 * away. Resolves when the connection is over, including any login in flight and the splice.
 * With mode 'implicit' the socket may be a TLSSocket already secured by the listener, or a plain
 * socket this function performs the TLS handshake on.
 */
export function handleSmtpConnection(
  socket: net.Socket | tls.TLSSocket,
  mode: 'implicit' | 'starttls' | 'none',
  client: ClientInfo,
  deps: SmtpSessionDeps,
): Promise<void> {
  return new SmtpSession(socket, mode, client, deps).run();
}

type State = 'greeting' | 'ready' | 'sasl' | 'login' | 'tls' | 'closing' | 'done' | 'spliced';

/** Commands that belong to a mail transaction: the upstream's business, after AUTH. */
const TRANSACTION = new Set(['MAIL', 'RCPT', 'DATA', 'BDAT', 'BURL', 'VRFY', 'EXPN', 'ETRN']);
const MAX_CLIENT_NAME = 64;

class SmtpSession {
  private readonly conn: ClientConnection;
  private secure: boolean;
  private state: State = 'greeting';
  private reader: SmtpCommandReader;
  private upstreamExtensions: string[] = [];
  private heloName: string | undefined;
  private commands = 0;
  private failures = 0;
  /** The phone said no to this connection; see startLogin(). */
  private denied = false;
  private sasl: SmtpSaslExchange | undefined;
  private idleTimer: NodeJS.Timeout | undefined;
  private loginAbort: AbortController | undefined;
  private loginDone: Promise<void> = Promise.resolve();
  private resolveRun!: () => void;
  private readonly log: Logger;

  constructor(
    socket: net.Socket,
    private readonly mode: 'implicit' | 'starttls' | 'none',
    private readonly client: ClientInfo,
    private readonly deps: SmtpSessionDeps,
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

  private newReader(): SmtpCommandReader {
    return new SmtpCommandReader({ maxLineLength: this.deps.limits.maxLineLength });
  }

  private onData(chunk: Buffer): void {
    if (this.state !== 'greeting' && this.state !== 'ready' && this.state !== 'sasl' && this.state !== 'login') return;
    this.reader.push(chunk);
    if (this.state === 'ready' || this.state === 'sasl') this.pump();
    // What a client pipelines behind AUTH is kept for the upstream; past a few lines' worth the
    // socket is paused (TCP backpressure) rather than buffering without bound.
    else if (this.reader.buffered > 4 * this.deps.limits.maxLineLength) this.conn.pause();
  }

  private onClosed(): void {
    if (this.state === 'spliced' || this.state === 'done') return;
    this.state = 'done';
    this.clearTimer();
    this.loginAbort?.abort();
    // The run is over only once a login in flight has settled (and released its upstream).
    void this.loginDone.then(() => this.resolveRun());
  }

  private send(line: string): void {
    const s = this.conn.socket;
    if (s.destroyed || !s.writable) return;
    if (this.log.isLevelEnabled('trace')) this.log.trace({ line }, 'smtp >');
    s.write(`${line}\r\n`);
  }

  /** Says goodbye and ends the connection; the 'close' event then finishes the session. */
  private close(bye?: string): void {
    if (this.state === 'closing' || this.state === 'done' || this.state === 'spliced') return;
    if (bye !== undefined && this.state !== 'tls') this.send(bye);
    this.state = 'closing';
    this.clearTimer();
    this.loginAbort?.abort();
    this.conn.end();
  }

  private touch(): void {
    this.clearTimer();
    this.idleTimer = setTimeout(() => {
      this.idleTimer = undefined;
      this.log.debug({ state: this.state }, 'smtp pre-login idle timeout');
      if (this.state === 'tls') this.conn.destroy();
      else this.close(`421 4.4.2 ${this.deps.hostname} Idle timeout, closing connection`);
    }, this.deps.limits.preLoginIdleTimeout);
  }

  private clearTimer(): void {
    if (this.idleTimer) clearTimeout(this.idleTimer);
    this.idleTimer = undefined;
  }

  private async greet(): Promise<void> {
    try {
      this.upstreamExtensions = await this.deps.upstreamExtensions();
    } catch (err) {
      this.log.warn({ err }, 'upstream EHLO list unavailable; offering only mailotp own extensions');
    }
    if (this.state !== 'greeting') return;
    this.send(`220 ${this.deps.hostname} ESMTP mailotp`);
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
      // RFC 3207 4.2: everything learnt before TLS is forgotten; the client must EHLO again.
      this.heloName = undefined;
      this.log.debug({ tlsVersion: socket.getProtocol() }, 'smtp TLS established');
      if (!greetAfter) return this.becomeReady();
      this.state = 'greeting';
      void this.greet();
    });
  }

  // ---- commands --------------------------------------------------------------------------

  private pump(): void {
    while (this.state === 'ready' || this.state === 'sasl') {
      const r = this.reader.next();
      if (!r) return;
      if (r.type === 'error') this.onLineTooLong();
      else if (this.state === 'sasl') this.onSaslLine(r.line);
      else this.onCommand(parseCommand(r.line));
    }
  }

  private onLineTooLong(): void {
    this.log.debug('smtp line too long');
    if (this.state === 'sasl') {
      this.sasl = undefined;
      this.state = 'ready';
    }
    if (!this.countCommand()) return;
    this.touch();
    this.send('500 5.5.2 Line too long');
  }

  /** false when the pre-login command cap is hit (and the connection is being closed). */
  private countCommand(): boolean {
    this.commands++;
    if (this.commands <= this.deps.limits.maxCommandsBeforeLogin) return true;
    this.close(`421 4.7.0 ${this.deps.hostname} Too many commands before authentication, closing connection`);
    return false;
  }

  /** On a STARTTLS port nothing but the way to TLS is served in clear. */
  private get needsTls(): boolean {
    return this.mode === 'starttls' && !this.secure;
  }

  private onCommand(cmd: SmtpCommand): void {
    if (!this.countCommand()) return;
    this.touch();
    this.log.debug({ command: loggableVerb(cmd) }, 'smtp command');
    if (this.log.isLevelEnabled('trace')) this.log.trace({ line: maskForLog(cmd) }, 'smtp <');
    const { verb, arg } = cmd;
    switch (verb) {
      case 'EHLO':
      case 'HELO':
        return this.hello(verb, arg);
      case 'STARTTLS':
        return this.starttls(arg);
      case 'AUTH':
        return this.auth(arg);
      case 'NOOP':
        return this.send('250 2.0.0 OK');
      case 'RSET':
        return this.send(arg ? '501 5.5.4 Syntax: RSET' : '250 2.0.0 OK');
      case 'QUIT':
        this.send(`221 2.0.0 ${this.deps.hostname} Bye`);
        return this.close();
      case 'HELP':
        return this.send('214 2.0.0 Say EHLO, then AUTH; after that this is your mail server as usual');
      default:
        if (!TRANSACTION.has(verb)) return this.send('500 5.5.1 Unrecognized command');
        if (verb === 'BDAT') return this.refuseBdat(arg);
        return this.send(this.needsTls ? SMTP_STARTTLS_FIRST : SMTP_AUTH_REQUIRED);
    }
  }

  /** A BDAT chunk follows its command at once (RFC 3030): refused, its octets are skipped, not read as commands. */
  private refuseBdat(arg: string): void {
    const m = /^(\d{1,15})(?: +LAST)?$/i.exec(arg);
    if (!m) {
      // Where the chunk ends is unknown, so nothing after it can be read as a command.
      return this.close('501 5.5.4 Syntax: BDAT chunk-size [LAST]');
    }
    this.reader.skip(Number(m[1]));
    this.send(this.needsTls ? SMTP_STARTTLS_FIRST : SMTP_AUTH_REQUIRED);
  }

  private hello(verb: 'EHLO' | 'HELO', arg: string): void {
    const name = arg.split(' ', 1)[0] ?? '';
    if (!name) return this.send(`501 5.5.4 Syntax: ${verb} hostname`);
    // Repeated to the upstream (XCLIENT HELO, EHLO) and shown on the phone: no controls, no spaces.
    if (!/^[\x21-\x7e]{1,255}$/.test(name)) return this.send('501 5.5.4 Invalid domain name');
    this.heloName = name;
    if (verb === 'HELO') return this.send(`250 ${this.deps.hostname}`);
    const extensions = clientExtensions(this.upstreamExtensions, { mode: this.mode, secure: this.secure });
    for (const line of ehloReply(this.deps.hostname, extensions)) this.send(line);
  }

  private starttls(arg: string): void {
    if (arg) return this.send('501 5.5.4 Syntax: STARTTLS');
    if (this.secure) return this.send('503 5.5.1 TLS already active');
    if (this.mode !== 'starttls') return this.send('502 5.5.1 STARTTLS not available');
    this.send('220 2.0.0 Ready to start TLS');
    this.startTls(false);
  }

  private auth(arg: string): void {
    if (this.needsTls) return this.send(SMTP_STARTTLS_FIRST);
    if (this.heloName === undefined) return this.send('503 5.5.1 Send EHLO first');
    const [mechName = '', initial, ...extra] = arg.split(' ');
    if (!mechName || extra.length > 0) return this.send('501 5.5.4 Syntax: AUTH mechanism [initial-response]');
    const mechanism = smtpSaslMechanism(mechName);
    if (!mechanism) return this.send('504 5.5.4 Unrecognized authentication type');
    this.sasl = new SmtpSaslExchange(mechanism);
    this.onSaslOutcome(this.sasl.start(initial));
  }

  private onSaslLine(line: Buffer): void {
    if (!this.sasl) return;
    this.touch();
    if (this.log.isLevelEnabled('trace')) this.log.trace({ line: maskForLog({ sasl: true }) }, 'smtp <');
    this.onSaslOutcome(this.sasl.respond(line.toString('latin1')));
  }

  private onSaslOutcome(outcome: SmtpSaslOutcome): void {
    if (outcome.type === 'challenge') {
      this.state = 'sasl';
      return this.send(outcome.line);
    }
    this.sasl = undefined;
    this.state = 'ready';
    if (outcome.type === 'bad') return this.send(outcome.reply);
    if (outcome.type === 'refused') return this.refuseLogin(outcome.reply, outcome.why);
    this.startLogin(outcome.user, outcome.password);
  }

  /** A login refused here, without asking the core; it still counts as a failed login. */
  private refuseLogin(reply: string, why: string): void {
    this.log.debug({ why }, 'smtp login refused locally');
    this.send(reply);
    this.countFailure();
  }

  /**
   * Closes after the Nth failure rather than refusing the N+1th attempt: that attempt would cost
   * one more password check upstream, which is what the limit is there to prevent.
   */
  private countFailure(): void {
    this.failures++;
    if (this.failures >= this.deps.limits.maxFailedLoginsPerConnection) {
      this.close(`421 4.7.0 ${this.deps.hostname} Too many failed authentications, closing connection`);
    }
  }

  // ---- login -----------------------------------------------------------------------------

  private startLogin(userBytes: Buffer, passwordBytes: Buffer): void {
    const creds = checkCredentials(userBytes, passwordBytes);
    if (!creds.ok) return this.refuseLogin(SMTP_AUTH_FAILED, creds.why);
    // Clients such as Python's smtplib answer a 535 by trying the next mechanism at once; after a
    // deny that would push a second request to the phone that just said no.
    if (this.denied) return this.refuseLogin(SMTP_AUTH_FAILED, 'denied earlier on this connection');
    this.state = 'login';
    // SMTP has no progress line: the client hears nothing until the answer, so the hold
    // (daemonOtp.holdTime) is what must stay under its timeout, not this one.
    this.clearTimer();
    this.loginDone = this.runLogin(creds.user, creds.password).catch((err: unknown) => {
      this.log.error({ err }, 'smtp login handling failed');
      this.conn.destroy();
    });
  }

  private async runLogin(user: string, password: string, retried = false): Promise<void> {
    const abort = new AbortController();
    this.loginAbort = abort;
    const clientName = this.heloName?.slice(0, MAX_CLIENT_NAME);
    const client: SmtpClientInfo = { ...this.client, name: clientName, heloName: this.heloName };
    const attempt: LoginAttempt<SmtpUpstreamLike> = {
      protocol: 'smtp',
      user,
      password,
      clientIp: this.client.ip,
      clientName,
      verify: () => this.deps.upstreamLogin(user, password, client, abort.signal),
      onHold: () => this.log.debug('smtp login held for approval'),
      signal: abort.signal,
    };
    let result: LoginResult<SmtpUpstreamLike>;
    try {
      result = await this.deps.authorize(attempt);
    } catch (err) {
      this.log.error({ err }, 'authorize threw; refusing the login as temporary');
      result = { kind: 'unavailable', reason: 'internal error' };
    } finally {
      this.loginAbort = undefined;
    }
    this.log.debug({ result: result.kind }, 'smtp login answered');
    if (this.state !== 'login') {
      // The client left while the core decided: an upstream session handed to us is ours to end.
      if (result.kind === 'approved') result.session.close();
      return;
    }
    if (result.kind === 'approved' && result.session.alive === false && !retried) {
      // The upstream dropped the session while the tap was awaited. The approval now exists, so
      // asking again logs in afresh and is approved at once instead of failing the client.
      this.log.info('upstream session ended during the hold; logging in again');
      result.session.close();
      return this.runLogin(user, password, true);
    }
    const reply = smtpLoginReply(result);
    if (result.kind === 'approved') return this.spliceTo(reply ?? '235 2.7.0 Authentication successful', result.session);
    // 'aborted' while the client is still here: nothing sensible to say, so hang up.
    if (reply === null) return this.close();
    this.send(reply);
    if (result.kind === 'denied') this.denied = true;
    if (isFailedLogin(result.kind)) {
      this.countFailure();
      if (this.state !== 'login') return;
    }
    this.becomeReady();
  }

  private async spliceTo(okLine: string, upstream: SmtpUpstreamLike): Promise<void> {
    this.send(okLine);
    this.state = 'spliced';
    this.clearTimer();
    const socket = this.conn.handOver();
    const clientBuffered = this.reader.takeRemaining();
    try {
      await this.deps.splice(socket, upstream.socket, { clientBuffered, upstreamBuffered: upstream.buffered });
    } catch (err) {
      this.log.warn({ err }, 'smtp splice failed');
      socket.destroy();
      upstream.close();
    } finally {
      this.resolveRun();
    }
  }
}
