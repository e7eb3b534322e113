import type net from 'node:net';
import tls from 'node:tls';
import type { ClientInfo, LoginAttempt, LoginResult } from '../../core/login-types.js';
import type { Logger } from '../../log/logger.js';
import { SaslExchange, type SaslOutcome } from '../imap/imap-auth.js';
import type { MailSessionDeps, SplicedUpstream } from '../shared/session-deps.js';
import { checkCredentials, saslMechanism } from '../shared/sasl.js';
import { ClientConnection } from '../shared/client-connection.js';
import { clientCapabilities, POP3_SASL_MECHANISMS } from './pop3-capabilities.js';
import { maskForLog, Pop3CommandReader, type Pop3Command } from './pop3-command-reader.js';
import { isFailedLogin, POP3_AUTH_FAILED, POP3_USE_STLS, pop3LoginReply } from './pop3-replies.js';

export interface Pop3UpstreamLike extends SplicedUpstream {
  loginResponseText: string; // what followed "+OK " upstream, e.g. "Logged in."
}

export interface Pop3SessionDeps extends MailSessionDeps<Pop3UpstreamLike> {
  /** The upstream's pre-login CAPA lines (cached by the caller). */
  upstreamCapabilities(): Promise<string[]>;
}

/**
 * Serves one POP3 client connection until it logs in (then hands it to deps.splice) or goes away.
 * Resolves when the connection is over, including any login still in flight and the splice.
 * With mode 'implicit' the socket may be a TLSSocket already secured by the listener, or a plain
 * socket this function performs the TLS handshake on.
 */
export function handlePop3Connection(
  socket: net.Socket | tls.TLSSocket,
  mode: 'implicit' | 'starttls' | 'none',
  client: ClientInfo,
  deps: Pop3SessionDeps,
): Promise<void> {
  return new Pop3Session(socket, mode, client, deps).run();
}

type State = 'greeting' | 'ready' | 'sasl' | 'login' | 'tls' | 'closing' | 'done' | 'spliced';

/** Valid only after login: answered as such rather than as unknown, so the client knows why. */
const TRANSACTION_COMMANDS = new Set(['STAT', 'LIST', 'RETR', 'DELE', 'NOOP', 'RSET', 'TOP', 'UIDL', 'LAST']);

class Pop3Session {
  private readonly conn: ClientConnection;
  private secure: boolean;
  private state: State = 'greeting';
  private reader: Pop3CommandReader;
  private upstreamCaps: string[] = [];
  /** The name from USER, waiting for PASS. */
  private user: Buffer | undefined;
  private commands = 0;
  private failures = 0;
  private sasl: SaslExchange | undefined;
  private idleTimer: NodeJS.Timeout | undefined;
  private loginAbort: AbortController | undefined;
  private loginDone: Promise<void> = Promise.resolve();
  private resolveRun!: () => void;
  private readonly log: Logger;

  constructor(
    socket: net.Socket,
    private readonly mode: 'implicit' | 'starttls' | 'none',
    private readonly client: ClientInfo,
    private readonly deps: Pop3SessionDeps,
  ) {
    this.log = deps.logger;
    this.secure = socket instanceof tls.TLSSocket;
    this.reader = new Pop3CommandReader(deps.limits.maxLineLength);
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
    // Bytes pipelined behind a login are kept for the upstream; past a few lines' worth the socket
    // is paused (TCP backpressure) rather than buffering without bound.
    else if (this.reader.buffered > 2 * this.deps.limits.maxLineLength) this.conn.pause();
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
    this.conn.send(line);
  }

  /** Sends a last line (POP3 has no untagged BYE: it must be the answer to a command) and closes. */
  private close(last?: string): void {
    if (this.state === 'closing' || this.state === 'done' || this.state === 'spliced') return;
    if (last !== undefined && this.state !== 'tls') this.send(last);
    this.state = 'closing';
    this.clearTimer();
    this.loginAbort?.abort();
    this.conn.end();
  }

  private touch(): void {
    this.clearTimer();
    this.idleTimer = setTimeout(() => {
      this.idleTimer = undefined;
      this.log.debug({ state: this.state }, 'pop3 pre-login idle timeout');
      if (this.state === 'tls') this.conn.destroy();
      else this.close('-ERR Disconnected for inactivity.');
    }, this.deps.limits.preLoginIdleTimeout);
  }

  private clearTimer(): void {
    if (this.idleTimer) clearTimeout(this.idleTimer);
    this.idleTimer = undefined;
  }

  private async greet(): Promise<void> {
    try {
      this.upstreamCaps = await this.deps.upstreamCapabilities();
    } catch (err) {
      this.log.warn({ err }, 'upstream POP3 capabilities unavailable; advertising only mailotp own');
    }
    if (this.state !== 'greeting') return;
    this.send('+OK mailotp ready.');
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
    this.user = undefined;
    // RFC 2595 / CVE-2011-0411: plaintext pipelined behind STLS is never executed.
    this.reader.clear();
    this.conn.upgrade(this.deps.tls.serverOptions(), (socket) => {
      if (this.state !== 'tls') return;
      this.secure = true;
      this.reader = new Pop3CommandReader(this.deps.limits.maxLineLength);
      this.log.debug({ tlsVersion: socket.getProtocol() }, 'pop3 TLS established');
      if (!greetAfter) return this.becomeReady();
      this.state = 'greeting';
      void this.greet();
    });
  }

  /** A STARTTLS port before TLS is up: nothing secret may be sent yet. */
  private get beforeStartTls(): boolean {
    return this.mode === 'starttls' && !this.secure;
  }

  // ---- commands --------------------------------------------------------------------------

  private pump(): void {
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
    this.commands++;
    if (this.commands > this.deps.limits.maxCommandsBeforeLogin) return this.close('-ERR Too many commands.');
    this.touch();
    this.log.debug({ command: cmd.keyword.slice(0, 16) }, 'pop3 command');
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
    this.sasl = new SaslExchange(mechanism);
    this.onSaslOutcome(this.sasl.start(initial));
  }

  private onSaslLine(cmd: Pop3Command): void {
    if (!this.sasl) return;
    this.touch();
    if (this.log.isLevelEnabled('trace')) this.log.trace({ line: maskForLog(cmd, true) }, 'pop3 <');
    this.onSaslOutcome(this.sasl.respond(cmd.line.toString('latin1')));
  }

  private onSaslOutcome(outcome: SaslOutcome): void {
    if (outcome.type === 'challenge') {
      this.state = 'sasl';
      return this.send(outcome.line);
    }
    this.sasl = undefined;
    this.state = 'ready';
    // RFC 5034: "*" cancels, answered with -ERR; so is a response that is not base64.
    if (outcome.type === 'bad') return this.send(`-ERR ${outcome.text}.`);
    if (outcome.type === 'refused') return this.refuseLogin(POP3_AUTH_FAILED, outcome.why);
    this.startLogin(outcome.user, outcome.password);
  }

  /** A login refused here, without asking the core; it still counts as a failed login. */
  private refuseLogin(reply: string, why: string): void {
    this.log.debug({ why }, 'pop3 login refused locally');
    this.send(reply);
    this.countFailure();
  }

  /**
   * Closes after the Nth failure rather than refusing the N+1th attempt: that attempt would cost
   * one more password check upstream, which is what the limit is there to prevent.
   */
  private countFailure(): void {
    this.failures++;
    if (this.failures >= this.deps.limits.maxFailedLoginsPerConnection) this.close();
  }

  // ---- login -----------------------------------------------------------------------------

  private startLogin(userBytes: Buffer, passwordBytes: Buffer): void {
    const creds = checkCredentials(userBytes, passwordBytes);
    if (!creds.ok) return this.refuseLogin(POP3_AUTH_FAILED, creds.why);
    this.state = 'login';
    this.clearTimer();
    this.loginDone = this.runLogin(creds.user, creds.password).catch((err: unknown) => {
      this.log.error({ err }, 'pop3 login handling failed');
      this.conn.destroy();
    });
  }

  private async runLogin(user: string, password: string): Promise<void> {
    const abort = new AbortController();
    this.loginAbort = abort;
    const attempt: LoginAttempt<Pop3UpstreamLike> = {
      protocol: 'pop3',
      user,
      password,
      clientIp: this.client.ip,
      verify: () => this.deps.upstreamLogin(user, password, this.client, abort.signal),
      // POP3 has no untagged lines: nothing may be sent before the final answer, so the hold is silent.
      signal: abort.signal,
    };
    let result: LoginResult<Pop3UpstreamLike>;
    try {
      result = await this.deps.authorize(attempt);
    } catch (err) {
      this.log.error({ err }, 'authorize threw; refusing the login as temporary');
      result = { kind: 'unavailable', reason: 'internal error' };
    } finally {
      this.loginAbort = undefined;
    }
    this.log.debug({ result: result.kind }, 'pop3 login answered');
    if (this.state !== 'login') {
      // The client left while the core decided: an upstream session handed to us is ours to end.
      if (result.kind === 'approved') result.session.close();
      return;
    }
    const reply = pop3LoginReply(result);
    if (result.kind === 'approved') return this.spliceTo(reply ?? '+OK', result.session);
    // 'aborted' while the client is still here: nothing sensible to say, so hang up.
    if (reply === null) return this.close();
    this.send(reply);
    if (isFailedLogin(result.kind)) {
      this.countFailure();
      if (this.state !== 'login') return;
    }
    this.becomeReady();
  }

  private async spliceTo(okLine: string, upstream: Pop3UpstreamLike): Promise<void> {
    this.send(okLine);
    this.state = 'spliced';
    this.clearTimer();
    const socket = this.conn.handOver();
    const clientBuffered = this.reader.takeRemaining();
    try {
      await this.deps.splice(socket, upstream.socket, { clientBuffered, upstreamBuffered: upstream.buffered });
    } catch (err) {
      this.log.warn({ err }, 'pop3 splice failed');
      socket.destroy();
      upstream.close();
    } finally {
      this.resolveRun();
    }
  }
}
