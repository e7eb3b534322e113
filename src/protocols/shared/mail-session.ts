import type net from 'node:net';
import tls from 'node:tls';
import { systemScheduler, type Scheduler, type Timer } from '../../core/clock.js';
import type { ClientInfo, LoginAttempt, LoginResult } from '../../core/login-types.js';
import type { Logger } from '../../log/logger.js';
import { ClientConnection } from './client-connection.js';
import type { SaslExchange, SaslOutcome } from './sasl-exchange.js';
import { isFailedLogin } from './reply-text.js';
import type { ShutdownTarget } from './live-sessions.js';
import type { MailSessionDeps, SplicedUpstream } from './session-deps.js';

export type SessionMode = 'implicit' | 'starttls' | 'none';

export type SessionState = 'greeting' | 'ready' | 'sasl' | 'login' | 'tls' | 'closing' | 'done' | 'spliced';

const MAX_REMEMBERED_HOLDS = 8;

/** Why the session hangs up on its own. */
export type Goodbye = 'idle' | 'too-many-commands' | 'too-many-failures' | 'shutdown';

/** A protocol's session class, as its connection handler builds one per connection. */
type SessionClass<D> = new (socket: net.Socket, mode: SessionMode, client: ClientInfo, deps: D) => { run(): Promise<void> };

/**
 * The connection handler of a protocol's session class: serves one client connection until it
 * logs in (then hands it to deps.splice) or goes away, and resolves when the connection is over,
 * including any login still in flight and the splice. With mode 'implicit' the socket may be a
 * TLSSocket already secured by the listener, or a plain socket the session performs the TLS
 * handshake on.
 */
export function connectionHandler<D>(Session: SessionClass<D>): (socket: net.Socket, mode: SessionMode, client: ClientInfo, deps: D) => Promise<void> {
  return (socket, mode, client, deps) => new Session(socket, mode, client, deps).run();
}

/** What the session needs of a protocol's command reader. */
export interface SessionReader {
  readonly buffered: number;
  push(chunk: Buffer): void;
  /** What was received but not read as commands: the upstream's, after the splice. */
  takeRemaining(): Buffer;
  clear(): void;
}

/**
 * The scaffolding every protocol's pre-login session shares: the connection, the idle timer,
 * the command and failed-login caps, STARTTLS, the login in flight, and the splice on approval.
 * A protocol supplies its greeting, its parsing and dispatch (pump) and its goodbye lines.
 */
export abstract class MailSession<U extends SplicedUpstream, R extends SessionReader, D extends MailSessionDeps<U, ClientInfo>>
  implements ShutdownTarget
{
  protected readonly conn: ClientConnection;
  protected readonly log: Logger;
  protected secure: boolean;
  protected state: SessionState = 'greeting';
  protected reader: R;
  protected readonly scheduler: Scheduler;
  /** The upstream's pre-login capability (IMAP, POP3) or extension (SMTP) lines, fetched before the greeting. */
  protected upstreamCaps: string[] = [];
  /** The SASL exchange in progress, and what goes before its replies (IMAP's tag). */
  private sasl: { exchange: SaslExchange; prefix: string } | undefined;
  private commands = 0;
  private failures = 0;
  private idleTimer: Timer | undefined;
  private loginAbort: AbortController | undefined;
  private loginDone: Promise<void> = Promise.resolve();
  /** Requests whose hold timed out on this connection, so a retry here is not held again. */
  private readonly timedOut: string[] = [];
  private resolveRun!: () => void;
  /** Takes the session out of deps.sessions (shutdown's list) once it closes or is spliced. */
  private leave: () => void = () => undefined;

  constructor(
    socket: net.Socket,
    /** Lower-case protocol name, the prefix of the log messages. */
    protected readonly protocol: 'imap' | 'pop3' | 'smtp',
    protected readonly mode: SessionMode,
    protected readonly client: ClientInfo,
    protected readonly deps: D,
  ) {
    this.log = deps.logger;
    this.scheduler = deps.scheduler ?? systemScheduler;
    this.secure = socket instanceof tls.TLSSocket;
    this.reader = this.newReader();
    this.conn = new ClientConnection(socket, this.log, {
      data: (chunk) => this.onData(chunk),
      end: () => this.close(),
      closed: () => this.onClosed(),
    }, this.scheduler);
  }

  // ---- protocol hooks --------------------------------------------------------------------

  /** A fresh command reader (at the start and after TLS). Called from the constructor. */
  protected abstract newReader(): R;
  /** The upstream's pre-login lines (cached by the caller) and the warning when they are unavailable. */
  protected abstract fetchUpstreamCaps(): Promise<string[]>;
  protected abstract upstreamCapsUnavailable(): string;
  protected abstract greeting(): string;
  /** Reads and dispatches what the reader holds while the state allows it. */
  protected abstract pump(): void;
  /** Bytes held while a login is in flight beyond which the socket is paused. */
  protected abstract maxPendingBytes(): number;
  /** The last line before hanging up; undefined: close without one. */
  protected abstract goodbye(why: Goodbye): string | undefined;
  /** Checks and starts the login a finished SASL exchange gave the credentials of. */
  protected abstract saslLogin(user: Buffer, password: Buffer): void;
  /** Forgets what was learnt in clear when a TLS handshake starts. */
  protected forgetBeforeTls(): void {}
  /** The answer to a login in flight when the server shuts down, before the goodbye; undefined: the goodbye answers it. */
  protected loginShutdownReply(): string | undefined {
    return undefined;
  }

  // ---- connection ------------------------------------------------------------------------

  run(): Promise<void> {
    const finished = new Promise<void>((resolve) => (this.resolveRun = resolve));
    this.conn.start();
    if (this.state === 'done') return finished;
    this.touch();
    if (this.mode === 'implicit' && !this.secure) this.startTls(true);
    else void this.greet();
    if (this.deps.sessions) this.leave = this.deps.sessions.add(this);
    return finished;
  }

  /**
   * The server is stopping: a held (or any in-flight) login is answered, then the protocol's
   * goodbye, at once; a TLS handshake in progress has nobody to say it to and is cut.
   */
  shutDown(): void {
    if (this.state === 'tls') return this.conn.destroy();
    if (this.state !== 'greeting' && this.state !== 'ready' && this.state !== 'sasl' && this.state !== 'login') return;
    this.log.debug({ state: this.state }, `${this.protocol} session closed for shutdown`);
    const reply = this.state === 'login' ? this.loginShutdownReply() : undefined;
    if (reply !== undefined) this.send(reply);
    this.close(this.goodbye('shutdown'));
  }

  private onData(chunk: Buffer): void {
    if (this.state !== 'greeting' && this.state !== 'ready' && this.state !== 'sasl' && this.state !== 'login') return;
    this.reader.push(chunk);
    if (this.state === 'ready' || this.state === 'sasl') this.pump();
    // Bytes pipelined behind a login are kept for the upstream; past the protocol's allowance the
    // socket is paused (TCP backpressure) rather than buffering without bound.
    else if (this.reader.buffered > this.maxPendingBytes()) this.conn.pause();
  }

  private onClosed(): void {
    if (this.state === 'spliced' || this.state === 'done') return;
    this.state = 'done';
    this.leave();
    this.clearTimers();
    this.loginAbort?.abort();
    // The run is over only once a login in flight has settled (and released its upstream).
    void this.loginDone.then(() => this.resolveRun());
  }

  protected send(line: string): void {
    this.conn.send(line);
  }

  /** Sends a last line (unless TLS is being negotiated) and ends the connection; the 'close' event then finishes the session. */
  protected close(last?: string): void {
    if (this.state === 'closing' || this.state === 'done' || this.state === 'spliced') return;
    if (last !== undefined && this.state !== 'tls') this.send(last);
    this.state = 'closing';
    this.leave();
    this.clearTimers();
    this.loginAbort?.abort();
    this.conn.end();
  }

  protected touch(): void {
    this.clearIdleTimer();
    this.idleTimer = this.scheduler.setTimeout(() => {
      this.idleTimer = undefined;
      this.log.debug({ state: this.state }, `${this.protocol} pre-login idle timeout`);
      if (this.state === 'tls') this.conn.destroy();
      else this.close(this.goodbye('idle'));
    }, this.deps.limits.preLoginIdleTimeout);
  }

  private clearIdleTimer(): void {
    this.idleTimer?.clear();
    this.idleTimer = undefined;
  }

  /** Every timer of the session (a protocol with more extends this). */
  protected clearTimers(): void {
    this.clearIdleTimer();
  }

  private async greet(): Promise<void> {
    try {
      this.upstreamCaps = await this.fetchUpstreamCaps();
    } catch (err) {
      this.log.warn({ err }, this.upstreamCapsUnavailable());
    }
    if (this.state !== 'greeting') return;
    this.send(this.greeting());
    this.becomeReady();
  }

  protected becomeReady(): void {
    this.state = 'ready';
    this.conn.resume();
    this.touch();
    this.pump();
  }

  protected startTls(greetAfter: boolean): void {
    this.state = 'tls';
    this.forgetBeforeTls();
    // RFC 3207 / RFC 2595 / CVE-2011-0411: plaintext pipelined behind STARTTLS is never executed.
    this.reader.clear();
    this.conn.upgrade(this.deps.tls.socketOptions(), (socket) => {
      if (this.state !== 'tls') return;
      this.secure = true;
      this.reader = this.newReader();
      this.log.debug({ tlsVersion: socket.getProtocol() }, `${this.protocol} TLS established`);
      if (!greetAfter) return this.becomeReady();
      this.state = 'greeting';
      void this.greet();
    });
  }

  // ---- limits ----------------------------------------------------------------------------

  /** false when the pre-login command cap is hit (and the connection is being closed). */
  protected countCommand(): boolean {
    this.commands++;
    if (this.commands <= this.deps.limits.maxCommandsBeforeLogin) return true;
    this.close(this.goodbye('too-many-commands'));
    return false;
  }

  /** A login refused here, without asking the core; it still counts as a failed login. */
  protected refuseLogin(reply: string, why: string): void {
    this.log.debug({ why }, `${this.protocol} login refused locally`);
    this.send(reply);
    this.countFailure();
  }

  /**
   * Closes after the Nth failure rather than refusing the N+1th attempt: that attempt would cost
   * one more password check upstream, which is what the limit is there to prevent.
   */
  private countFailure(): void {
    this.failures++;
    if (this.failures >= this.deps.limits.maxFailedLoginsPerConnection) this.close(this.goodbye('too-many-failures'));
  }

  // ---- SASL ------------------------------------------------------------------------------

  /** Starts an AUTH/AUTHENTICATE exchange; `prefix` goes before its final replies (IMAP's tag and a space). */
  protected beginSasl(exchange: SaslExchange, initial: string | undefined, prefix = ''): void {
    this.sasl = { exchange, prefix };
    this.onSaslOutcome(exchange.start(initial));
  }

  /** The client's response line in the exchange (already logged, masked, by the protocol). */
  protected answerSasl(line: string): void {
    if (!this.sasl) return;
    this.touch();
    this.onSaslOutcome(this.sasl.exchange.respond(line));
  }

  /** Ends the exchange without a reply (the protocol answers itself), back to reading commands. */
  protected cancelSasl(): void {
    this.sasl = undefined;
    this.state = 'ready';
  }

  private onSaslOutcome(outcome: SaslOutcome): void {
    if (outcome.type === 'challenge') {
      this.state = 'sasl';
      return this.send(outcome.line);
    }
    const prefix = this.sasl?.prefix ?? '';
    this.cancelSasl();
    if (outcome.type === 'bad') return this.send(`${prefix}${outcome.reply}`);
    if (outcome.type === 'refused') return this.refuseLogin(`${prefix}${outcome.reply}`, outcome.why);
    this.saslLogin(outcome.user, outcome.password);
  }

  // ---- login -----------------------------------------------------------------------------

  /** Stops reading commands (and the idle timer) while `runLogin` asks the core. */
  protected beginLogin(runLogin: () => Promise<void>): void {
    this.state = 'login';
    this.clearIdleTimer();
    this.loginDone = runLogin().catch((err: unknown) => {
      this.log.error({ err }, `${this.protocol} login handling failed`);
      this.conn.destroy();
    });
  }

  /**
   * Asks the core about the attempt built with the login's abort signal; `settled` runs once it
   * answered. undefined when the client left meanwhile (an approved upstream is closed then).
   */
  protected async askCore(
    build: (signal: AbortSignal) => LoginAttempt<U>,
    settled?: () => void,
  ): Promise<LoginResult<U> | undefined> {
    const abort = new AbortController();
    this.loginAbort = abort;
    const attempt: LoginAttempt<U> = { ...build(abort.signal), timedOut: [...this.timedOut] };
    let result: LoginResult<U>;
    try {
      result = await this.deps.authorize(attempt);
    } catch (err) {
      this.log.error({ err }, 'authorize threw; refusing the login as temporary');
      result = { kind: 'unavailable', reason: 'internal error' };
    } finally {
      settled?.();
      this.loginAbort = undefined;
    }
    this.log.debug({ result: result.kind }, `${this.protocol} login answered`);
    if (result.kind === 'pending-timeout' && !this.timedOut.includes(result.requestId)) {
      this.timedOut.push(result.requestId);
      // Each entry took a full hold to earn; the bound only keeps a long-lived connection small.
      if (this.timedOut.length > MAX_REMEMBERED_HOLDS) this.timedOut.shift();
    }
    if (this.state !== 'login') {
      // The client left while the core decided: an upstream session handed to us is ours to end.
      if (result.kind === 'approved') result.session.close();
      return undefined;
    }
    return result;
  }

  /**
   * Answers the core's result: `approvedLine` then the splice, or `reply` (null: hang up) and
   * back to reading commands unless that was one failure too many.
   */
  protected finishLogin(result: LoginResult<U>, reply: string | null, approvedLine: string): void {
    if (result.kind === 'approved') return this.spliceTo(approvedLine, result.session);
    // 'aborted' while the client is still here: nothing sensible to say, so hang up.
    if (reply === null) return this.close();
    this.send(reply);
    // Too many of the user's logins already wait for a tap: as with the connection caps, the
    // temporary refusal, then hang up (staying would only invite the next held login).
    if (result.kind === 'rate-limited' && result.limit === 'held') return this.close();
    if (isFailedLogin(result.kind)) {
      this.countFailure();
      if (this.state !== 'login') return;
    }
    this.becomeReady();
  }

  /**
   * Sends the OK and hands both sockets to the splice. Nothing the splice keeps refers back to
   * this session (its reader, timers, login state): a spliced session may last hours, and at
   * 10,000 of them every retained pre-login object shows in the process's memory.
   */
  private spliceTo(okLine: string, upstream: U): void {
    this.send(okLine);
    this.state = 'spliced';
    this.leave();
    this.clearTimers();
    const socket = this.conn.handOver();
    const clientBuffered = this.reader.takeRemaining();
    this.reader.clear();
    const { socket: upstreamSocket, buffered: upstreamBuffered } = upstream.handOver?.() ?? upstream;
    const { log, protocol, resolveRun } = this;
    this.deps
      .splice(socket, upstreamSocket, { clientBuffered, upstreamBuffered })
      .catch((err: unknown) => {
        log.warn({ err }, `${protocol} splice failed`);
        socket.destroy();
        upstreamSocket.destroy();
      })
      .finally(resolveRun);
  }
}
