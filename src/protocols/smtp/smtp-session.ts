import type net from 'node:net';
import type { ClientInfo } from '../../core/login-types.js';
import { checkCredentials, saslMechanism } from '../shared/sasl.js';
import { SaslExchange } from '../shared/sasl-exchange.js';
import { connectionHandler, MailSession, type Goodbye, type SessionMode } from '../shared/mail-session.js';
import type { MailSessionDeps, SplicedUpstream } from '../shared/session-deps.js';
import { loggableVerb, maskForLog, parseCommand, SmtpCommandReader, type SmtpCommand } from './smtp-command-reader.js';
import { clientExtensions, ehloReply } from './smtp-extensions.js';
import { SMTP_AUTH_FAILED, SMTP_AUTH_REQUIRED, SMTP_SASL, SMTP_STARTTLS_FIRST, smtpLoginReply } from './smtp-replies.js';

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

/** Commands that belong to a mail transaction: the upstream's business, after AUTH. */
const TRANSACTION = new Set(['MAIL', 'RCPT', 'DATA', 'BDAT', 'BURL', 'VRFY', 'EXPN', 'ETRN']);
const MAX_CLIENT_NAME = 64;

class SmtpSession extends MailSession<SmtpUpstreamLike, SmtpCommandReader, SmtpSessionDeps> {
  private heloName: string | undefined;
  /** The phone said no to this connection; see startLogin(). */
  private denied = false;

  constructor(socket: net.Socket, mode: SessionMode, client: ClientInfo, deps: SmtpSessionDeps) {
    super(socket, 'smtp', mode, client, deps);
  }

  protected override newReader(): SmtpCommandReader {
    return new SmtpCommandReader({ maxLineLength: this.deps.limits.maxLineLength });
  }

  protected override fetchUpstreamCaps(): Promise<string[]> {
    return this.deps.upstreamExtensions();
  }

  protected override upstreamCapsUnavailable(): string {
    return 'upstream EHLO list unavailable; offering only mailotp own extensions';
  }

  protected override greeting(): string {
    return `220 ${this.deps.hostname} ESMTP mailotp`;
  }

  /** What a client pipelines behind AUTH: a few lines' worth. */
  protected override maxPendingBytes(): number {
    return 4 * this.deps.limits.maxLineLength;
  }

  protected override goodbye(why: Goodbye): string {
    const host = this.deps.hostname;
    if (why === 'idle') return `421 4.4.2 ${host} Idle timeout, closing connection`;
    // RFC 5321 3.8: 421 answers any command when the server must shut down; 4.3.2 "system not accepting messages".
    if (why === 'shutdown') return `421 4.3.2 ${host} Server shutting down, try again later`;
    if (why === 'too-many-commands') return `421 4.7.0 ${host} Too many commands before authentication, closing connection`;
    return `421 4.7.0 ${host} Too many failed authentications, closing connection`;
  }

  /** RFC 3207 4.2: everything learnt before TLS is forgotten; the client must EHLO again. */
  protected override forgetBeforeTls(): void {
    this.heloName = undefined;
  }

  protected override send(line: string): void {
    const s = this.conn.socket;
    if (s.destroyed || !s.writable) return;
    if (this.log.isLevelEnabled('trace')) this.log.trace({ line }, 'smtp >');
    s.write(`${line}\r\n`);
  }

  // ---- commands --------------------------------------------------------------------------

  protected override pump(): void {
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
    if (this.state === 'sasl') this.cancelSasl();
    if (!this.countCommand()) return;
    this.touch();
    this.send('500 5.5.2 Line too long');
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
    const extensions = clientExtensions(this.upstreamCaps, { mode: this.mode, secure: this.secure });
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
    const mechanism = saslMechanism(mechName);
    if (!mechanism) return this.send('504 5.5.4 Unrecognized authentication type');
    this.beginSasl(new SaslExchange(mechanism, SMTP_SASL), initial);
  }

  private onSaslLine(line: Buffer): void {
    if (this.log.isLevelEnabled('trace')) this.log.trace({ line: maskForLog({ sasl: true }) }, 'smtp <');
    this.answerSasl(line.toString('latin1'));
  }

  protected override saslLogin(user: Buffer, password: Buffer): void {
    this.startLogin(user, password);
  }

  // ---- login -----------------------------------------------------------------------------

  private startLogin(userBytes: Buffer, passwordBytes: Buffer): void {
    const creds = checkCredentials(userBytes, passwordBytes);
    if (!creds.ok) return this.refuseLogin(SMTP_AUTH_FAILED, creds.why);
    // Clients such as Python's smtplib answer a 535 by trying the next mechanism at once; after a
    // deny that would push a second request to the phone that just said no.
    if (this.denied) return this.refuseLogin(SMTP_AUTH_FAILED, 'denied earlier on this connection');
    // SMTP has no progress line: the client hears nothing until the answer, so the hold
    // (daemonOtp.holdTime) is what must stay under its timeout, not this one.
    this.beginLogin(() => this.runLogin(creds.user, creds.password));
  }

  private async runLogin(user: string, password: string, retried = false): Promise<void> {
    const clientName = this.heloName?.slice(0, MAX_CLIENT_NAME);
    const client: SmtpClientInfo = { ...this.client, name: clientName, heloName: this.heloName };
    const result = await this.askCore((signal) => ({
      protocol: 'smtp',
      user,
      password,
      clientIp: this.client.ip,
      clientName,
      verify: () => this.deps.upstreamLogin(user, password, client, signal),
      onHold: () => this.log.debug('smtp login held for approval'),
      signal,
    }));
    if (!result) return;
    if (result.kind === 'approved' && result.session.alive === false && !retried) {
      // The upstream dropped the session while the tap was awaited. The approval now exists, so
      // asking again logs in afresh and is approved at once instead of failing the client.
      this.log.info('upstream session ended during the hold; logging in again');
      result.session.close();
      return this.runLogin(user, password, true);
    }
    const reply = smtpLoginReply(result);
    if (result.kind === 'denied') this.denied = true;
    return this.finishLogin(result, reply, reply ?? '235 2.7.0 Authentication successful');
  }
}

/** Serves one SMTP client connection (see connectionHandler). */
export const handleSmtpConnection = connectionHandler<SmtpSessionDeps>(SmtpSession);
