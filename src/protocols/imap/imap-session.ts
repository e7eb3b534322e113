import type net from 'node:net';
import type { Timer } from '../../core/clock.js';
import type { ClientInfo } from '../../core/login-types.js';
import { connectionHandler, MailSession, type Goodbye, type SessionMode } from '../shared/mail-session.js';
import type { MailSessionDeps, SplicedUpstream } from '../shared/session-deps.js';
import { checkCredentials, saslMechanism } from '../shared/sasl.js';
import { SaslExchange } from '../shared/sasl-exchange.js';
import { astringBytes, clientNameFromId } from './imap-arguments.js';
import { clientCapabilities } from './imap-capabilities.js';
import { ImapCommandReader, loggableName, maskForLog, type ImapCommand, type ImapReadError } from './imap-command-reader.js';
import { IMAP_AUTH_FAILED, IMAP_LOGIN_SHUTTING_DOWN, IMAP_PROGRESS_LINE, IMAP_SASL, imapLoginReply } from './imap-replies.js';

export interface ImapUpstreamLike extends SplicedUpstream {
  loginResponseText: string; // what followed "tag OK " upstream, e.g. "[CAPABILITY IMAP4rev1 IDLE ...] Logged in"
}

export interface ImapSessionDeps extends MailSessionDeps<ImapUpstreamLike> {
  /** The upstream's pre-login capabilities (cached by the caller). */
  upstreamCapabilities(): Promise<string[]>;
  progressIntervalMs: number; // "* OK Waiting for approval on your phone" cadence (10 s default)
}

const GOODBYES: Record<Goodbye, string> = {
  idle: 'Idle timeout',
  'too-many-commands': 'Too many commands',
  'too-many-failures': 'Too many failed logins',
  shutdown: 'Server shutting down',
};

class ImapSession extends MailSession<ImapUpstreamLike, ImapCommandReader, ImapSessionDeps> {
  private clientName: string | undefined;
  /** The tag of the AUTHENTICATE in progress. */
  private saslTag = '*';
  private progressTimer: Timer | undefined;
  /** The tag of the login in flight, answered if the server stops meanwhile. */
  private loginTag = '*';

  constructor(socket: net.Socket, mode: SessionMode, client: ClientInfo, deps: ImapSessionDeps) {
    super(socket, 'imap', mode, client, deps);
  }

  protected override newReader(): ImapCommandReader {
    return new ImapCommandReader({
      maxLineLength: this.deps.limits.maxLineLength,
      maxLiteralSize: this.deps.limits.maxLiteralSize,
      onContinuationNeeded: () => this.send('+ Ready for literal data'),
    });
  }

  protected override fetchUpstreamCaps(): Promise<string[]> {
    return this.deps.upstreamCapabilities();
  }

  protected override upstreamCapsUnavailable(): string {
    return 'upstream IMAP capabilities unavailable; advertising only mailotp own';
  }

  protected override greeting(): string {
    return `* OK [CAPABILITY ${this.capabilities()}] mailotp ready.`;
  }

  /** One command's worth: a line and the largest literal. */
  protected override maxPendingBytes(): number {
    return this.deps.limits.maxLineLength + 2 * this.deps.limits.maxLiteralSize;
  }

  protected override goodbye(why: Goodbye): string {
    return `* BYE ${GOODBYES[why]}`;
  }

  protected override loginShutdownReply(): string {
    return `${this.loginTag} ${IMAP_LOGIN_SHUTTING_DOWN}`;
  }

  protected override clearTimers(): void {
    super.clearTimers();
    this.stopProgress();
  }

  private stopProgress(): void {
    this.progressTimer?.clear();
    this.progressTimer = undefined;
  }

  private bye(text: string): void {
    this.close(`* BYE ${text}`);
  }

  private capabilities(): string {
    return clientCapabilities(this.upstreamCaps, { beforeStartTls: this.mode === 'starttls' && !this.secure }).join(' ');
  }

  // ---- commands --------------------------------------------------------------------------

  protected override pump(): void {
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
      return this.bye('Closing connection');
    }
    if (error.kind === 'literal-too-large' && error.fatal) return this.bye('Literal too large');
    if (!this.countCommand()) return;
    this.touch();
    const tag = error.tag ?? '*';
    this.send(`${tag} BAD ${error.kind === 'literal-too-large' ? 'Literal too large' : error.message}`);
  }

  private onCommand(cmd: ImapCommand): void {
    if (!this.countCommand()) return;
    this.touch();
    this.log.debug({ command: loggableName(cmd.name) }, 'imap command');
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
    this.saslTag = tag;
    this.beginSasl(new SaslExchange(mechanism, IMAP_SASL), initial?.value, `${tag} `);
  }

  private onSaslLine(raw: Buffer): void {
    if (this.log.isLevelEnabled('trace')) this.log.trace({ line: maskForLog({ continuation: true, raw }) }, 'imap <');
    this.answerSasl(raw.toString('latin1'));
  }

  protected override saslLogin(user: Buffer, password: Buffer): void {
    this.startLogin(this.saslTag, user, password);
  }

  // ---- login -----------------------------------------------------------------------------

  private startLogin(tag: string, userBytes: Buffer, passwordBytes: Buffer): void {
    const creds = checkCredentials(userBytes, passwordBytes);
    if (!creds.ok) return this.refuseLogin(`${tag} ${IMAP_AUTH_FAILED}`, creds.why);
    this.loginTag = tag;
    this.beginLogin(() => this.runLogin(tag, creds.user, creds.password));
  }

  private async runLogin(tag: string, user: string, password: string): Promise<void> {
    const client: ClientInfo = { ...this.client, name: this.clientName };
    const result = await this.askCore(
      (signal) => ({
        protocol: 'imap',
        user,
        password,
        clientIp: this.client.ip,
        clientName: this.clientName,
        verify: () => this.deps.upstreamLogin(user, password, client, signal),
        onHold: () => {
          if (this.progressTimer || this.state !== 'login') return;
          this.progressTimer = this.scheduler.setInterval(() => {
            if (this.state === 'login') this.send(IMAP_PROGRESS_LINE);
          }, this.deps.progressIntervalMs);
        },
        signal,
      }),
      () => this.stopProgress(),
    );
    if (!result) return;
    const reply = imapLoginReply(result);
    return this.finishLogin(result, reply === null ? null : `${tag} ${reply}`, `${tag} ${reply ?? 'OK'}`);
  }
}

/** Serves one IMAP client connection (see connectionHandler). */
export const handleImapConnection = connectionHandler<ImapSessionDeps>(ImapSession);
