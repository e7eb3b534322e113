import type net from 'node:net';
import type { ClientInfo } from '../../core/login-types.js';
import { connectionHandler, MailSession, type Goodbye, type SessionMode } from '../shared/mail-session.js';
import type { MailSessionDeps, SplicedUpstream } from '../shared/session-deps.js';
import { checkCredentials, saslMechanism } from '../shared/sasl.js';
import { SaslExchange } from '../shared/sasl-exchange.js';
import { clientCapabilities, POP3_SASL_MECHANISMS } from './pop3-capabilities.js';
import { loggableKeyword, maskForLog, Pop3CommandReader, type Pop3Command } from './pop3-command-reader.js';
import { POP3_AUTH_FAILED, POP3_SASL, POP3_SHUTTING_DOWN, POP3_USE_STLS, pop3LoginReply } from './pop3-replies.js';

export interface Pop3UpstreamLike extends SplicedUpstream {
  loginResponseText: string; // what followed "+OK " upstream, e.g. "Logged in."
}

export interface Pop3SessionDeps extends MailSessionDeps<Pop3UpstreamLike> {
  /** The upstream's pre-login CAPA lines (cached by the caller). */
  upstreamCapabilities(): Promise<string[]>;
}

/** Valid only after login: answered as such rather than as unknown, so the client knows why. */
const TRANSACTION_COMMANDS = new Set(['STAT', 'LIST', 'RETR', 'DELE', 'NOOP', 'RSET', 'TOP', 'UIDL', 'LAST']);

class Pop3Session extends MailSession<Pop3UpstreamLike, Pop3CommandReader, Pop3SessionDeps> {
  /** The name from USER, waiting for PASS. */
  private user: Buffer | undefined;

  constructor(socket: net.Socket, mode: SessionMode, client: ClientInfo, deps: Pop3SessionDeps) {
    super(socket, 'pop3', mode, client, deps);
  }

  protected override newReader(): Pop3CommandReader {
    return new Pop3CommandReader(this.deps.limits.maxLineLength);
  }

  protected override fetchUpstreamCaps(): Promise<string[]> {
    return this.deps.upstreamCapabilities();
  }

  protected override upstreamCapsUnavailable(): string {
    return 'upstream POP3 capabilities unavailable; advertising only mailotp own';
  }

  protected override greeting(): string {
    return '+OK mailotp ready.';
  }

  /** A few lines' worth. */
  protected override maxPendingBytes(): number {
    return 2 * this.deps.limits.maxLineLength;
  }

  /** POP3 has no untagged BYE: a last line must be the answer to a command (so none after a failed login). */
  protected override goodbye(why: Goodbye): string | undefined {
    if (why === 'idle') return '-ERR Disconnected for inactivity.';
    if (why === 'too-many-commands') return '-ERR Too many commands.';
    if (why === 'shutdown') return POP3_SHUTTING_DOWN;
    return undefined;
  }

  protected override forgetBeforeTls(): void {
    this.user = undefined;
  }

  /** A STARTTLS port before TLS is up: nothing secret may be sent yet. */
  private get beforeStartTls(): boolean {
    return this.mode === 'starttls' && !this.secure;
  }

  // ---- commands --------------------------------------------------------------------------

  protected override pump(): void {
    while (this.state === 'ready' || this.state === 'sasl') {
      const r = this.reader.next();
      if (!r) return;
      if (r.type === 'error') {
        this.log.debug('pop3 line too long');
        return this.close('-ERR Line too long');
      }
      if (this.state === 'sasl') this.onSaslLine(r.command);
      else this.onCommand(r.command);
    }
  }

  private onCommand(cmd: Pop3Command): void {
    if (!this.countCommand()) return;
    this.touch();
    this.log.debug({ command: loggableKeyword(cmd.keyword) }, 'pop3 command');
    if (this.log.isLevelEnabled('trace')) this.log.trace({ line: maskForLog(cmd) }, 'pop3 <');
    const args = cmd.rest === null ? [] : cmd.rest.toString('latin1').split(' ');
    switch (cmd.keyword) {
      case 'CAPA':
        this.send('+OK Capability list follows');
        for (const line of clientCapabilities(this.upstreamCaps, { beforeStartTls: this.beforeStartTls, stlsAvailable: this.beforeStartTls })) this.send(line);
        return this.send('.');
      case 'QUIT':
        return this.close('+OK Logging out.');
      case 'STLS':
        if (!this.beforeStartTls) return this.send('-ERR STLS not available.');
        if (cmd.rest !== null) return this.send('-ERR Unexpected arguments.');
        this.send('+OK Begin TLS negotiation now.');
        return this.startTls(false);
      case 'USER':
        return this.userCommand(cmd.rest);
      case 'PASS':
        return this.passCommand(cmd.rest);
      case 'AUTH':
        return this.authCommand(args);
      default:
        return this.send(TRANSACTION_COMMANDS.has(cmd.keyword) ? '-ERR Command not valid before login.' : '-ERR Unknown command.');
    }
  }

  private userCommand(name: Buffer | null): void {
    if (this.beforeStartTls) return this.send(POP3_USE_STLS);
    this.user = undefined;
    if (!name || name.length === 0) return this.send('-ERR Invalid arguments.');
    // Checked here as well as at PASS so that the client learns at once; a name with control
    // characters could only be an attempt at log or protocol injection.
    if (/[\x00-\x1f\x7f]/.test(name.toString('latin1'))) {
      return this.refuseLogin('-ERR [AUTH] Invalid user name.', 'invalid user name');
    }
    this.user = name;
    this.send('+OK');
  }

  private passCommand(password: Buffer | null): void {
    if (this.beforeStartTls) return this.send(POP3_USE_STLS);
    const user = this.user;
    this.user = undefined;
    if (!user) return this.send('-ERR No username given.');
    this.startLogin(user, password ?? Buffer.alloc(0));
  }

  private authCommand(args: string[]): void {
    if (this.beforeStartTls) return this.send(POP3_USE_STLS);
    const [mechName, initial] = args;
    if (mechName === undefined) {
      // Outlook's pre-CAPA discovery: "AUTH" alone lists the mechanisms.
      this.send('+OK');
      for (const m of POP3_SASL_MECHANISMS) this.send(m);
      return this.send('.');
    }
    if (args.length > 2 || mechName === '' || initial === '') return this.send('-ERR Invalid arguments.');
    const mechanism = saslMechanism(mechName);
    if (!mechanism) return this.send('-ERR Unsupported authentication mechanism.');
    this.user = undefined;
    this.beginSasl(new SaslExchange(mechanism, POP3_SASL), initial);
  }

  private onSaslLine(cmd: Pop3Command): void {
    if (this.log.isLevelEnabled('trace')) this.log.trace({ line: maskForLog(cmd, true) }, 'pop3 <');
    this.answerSasl(cmd.line.toString('latin1'));
  }

  protected override saslLogin(user: Buffer, password: Buffer): void {
    this.startLogin(user, password);
  }

  // ---- login -----------------------------------------------------------------------------

  private startLogin(userBytes: Buffer, passwordBytes: Buffer): void {
    const creds = checkCredentials(userBytes, passwordBytes);
    if (!creds.ok) return this.refuseLogin(POP3_AUTH_FAILED, creds.why);
    this.beginLogin(() => this.runLogin(creds.user, creds.password));
  }

  private async runLogin(user: string, password: string): Promise<void> {
    const result = await this.askCore((signal) => ({
      protocol: 'pop3',
      user,
      password,
      clientIp: this.client.ip,
      verify: () => this.deps.upstreamLogin(user, password, this.client, signal),
      // POP3 has no untagged lines: nothing may be sent before the final answer, so the hold is silent.
      signal,
    }));
    if (!result) return;
    const reply = pop3LoginReply(result);
    return this.finishLogin(result, reply, reply ?? '+OK');
  }
}

/** Serves one POP3 client connection (see connectionHandler). */
export const handlePop3Connection = connectionHandler<Pop3SessionDeps>(Pop3Session);
