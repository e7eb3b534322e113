import { readFileSync } from 'node:fs';
import net from 'node:net';
import { PassThrough, type Duplex } from 'node:stream';
import tls from 'node:tls';
import { configSchema, type LimitsConfig } from '../../src/config/schema.js';
import type { Scheduler } from '../../src/core/clock.js';
import type { AuthorizeLogin, ClientInfo, LoginAttempt, LoginResult, VerifiedUpstream, VerifyResult } from '../../src/core/login-types.js';
import { silentLogger, type Logger } from '../../src/log/logger.js';
import { TlsContextProvider } from '../../src/net/tls-context.js';
import type { SessionMode } from '../../src/protocols/shared/mail-session.js';
import type { MailSessionDeps } from '../../src/protocols/shared/session-deps.js';
import { testCerts } from './certs.js';
import { connectPlain, connectTls, type LineClient } from './line-client.js';

/**
 * One harness for the IMAP, POP3 and SMTP session tests: the real session on a real loopback socket
 * (real TLS with the test CA), with a core and an upstream that record what they were asked and
 * answer as the test says. Each protocol adds its own dependencies (capabilities, hostname) through
 * `handle`.
 */

/** The production defaults, straight from the config schema, so tests and the daemon agree. */
export const DEFAULT_LIMITS: LimitsConfig = configSchema.shape.limits.parse({});

/** An upstream session as every protocol's session wants one, recording whether it was closed. */
export interface FakeUpstream {
  socket: PassThrough;
  buffered: Buffer;
  /** What followed the upstream's login OK (IMAP tagged OK, POP3 +OK). */
  loginResponseText: string;
  /** false: the upstream dropped the session while the login was held (SMTP checks it). */
  alive: boolean;
  closed: boolean;
  /** How often close() was called. */
  closes: number;
  close(): void;
}

/**
 * How the fake core answers, given what the upstream said of the password. Generic like the core's
 * own `authorize`, so that a behaviour can only hand back the session it was given.
 */
export type Behaviour = <S extends VerifiedUpstream>(attempt: LoginAttempt<S>, verified: VerifyResult<S>) => Promise<LoginResult<S>> | LoginResult<S>;

/** A result carrying no session (every refusal), usable as any protocol's answer. */
export type Refusal = Exclude<LoginResult<never>, { kind: 'approved' }>;

/** The core's answer when two-factor approval passes: whatever verify said, approved on success. */
export const approve: Behaviour = (_attempt, v) => {
  if (v.kind === 'ok') return { kind: 'approved', session: v.session, reason: 'tap' };
  return v.kind === 'bad-password' ? { kind: 'bad-password', reply: v.reply } : { kind: 'unavailable', reason: v.reason };
};

export interface UpstreamLoginCall<C extends ClientInfo = ClientInfo> {
  user: string;
  password: string;
  client: C;
  signal: AbortSignal;
}

export interface SpliceCall {
  clientBuffered: Buffer;
  upstreamBuffered: Buffer;
  upstream: Duplex;
}

/** What the fakes were asked, in order. */
export interface Harness<C extends ClientInfo = ClientInfo> {
  attempts: LoginAttempt<VerifiedUpstream>[];
  upstreamLogins: UpstreamLoginCall<C>[];
  splices: SpliceCall[];
  upstreams: FakeUpstream[];
}

export interface HarnessOptions {
  behaviour?: Behaviour;
  limits?: Partial<LimitsConfig>;
  logger?: Logger;
  mode?: SessionMode;
  /** 'net': a plain TCP listener (implicit mode then does the TLS handshake in the session);
   * 'tls': a tls.Server handing over already-secured sockets. */
  kind?: 'net' | 'tls';
  /** Makes this many new fake upstream sessions look dead already (dropped during the hold). */
  deadUpstreams?: number;
  /** What the fake upstream says after its login OK, instead of the dialect's usual text. */
  loginResponseText?: string;
  /** The session's timers; a FakeClock lets a test move them instead of sleeping. */
  scheduler?: Scheduler;
}

/** The protocol's part: its greeting (checked by connect), its fake upstream's texts, its session. */
export interface SessionDialect<C extends ClientInfo> {
  /** When set, connect() reads the greeting and fails unless it is exactly this. */
  greeting?: string;
  loginResponseText: string;
  /** What the fake upstream sent after its login reply (shows up first after the splice). */
  upstreamBuffered: string;
  /** The line the fake splice writes, so a test sees that the splice happened. */
  splicedLine: string;
  handle(socket: net.Socket, mode: SessionMode, client: ClientInfo, deps: MailSessionDeps<FakeUpstream, C>): Promise<void>;
}

export interface ServerContext<C extends ClientInfo = ClientInfo> {
  h: Harness<C>;
  port: number;
  sessions: Promise<void>[];
  /** A client of the right kind for the mode (TLS for implicit); destroyed after the body. */
  connect(): Promise<LineClient>;
}

/** The fake core: records each attempt, asks the upstream (verify), then answers as `behaviour` says. */
export function recordingAuthorize(attempts: LoginAttempt<VerifiedUpstream>[], behaviour: Behaviour): AuthorizeLogin {
  return async (attempt) => {
    attempts.push(attempt);
    return behaviour(attempt, await attempt.verify());
  };
}

function sessionDeps<C extends ClientInfo>(h: Harness<C>, dialect: SessionDialect<C>, opts: HarnessOptions): MailSessionDeps<FakeUpstream, C> {
  let dead = opts.deadUpstreams ?? 0;
  const certs = testCerts();
  return {
    authorize: recordingAuthorize(h.attempts, opts.behaviour ?? approve),
    upstreamLogin: async (user, password, client, signal) => {
      h.upstreamLogins.push({ user, password, client, signal });
      const alive = dead-- <= 0;
      const up: FakeUpstream = {
        socket: new PassThrough(),
        buffered: Buffer.from(dialect.upstreamBuffered),
        loginResponseText: opts.loginResponseText ?? dialect.loginResponseText,
        alive,
        closed: false,
        closes: 0,
        close() {
          up.closed = true;
          up.closes++;
        },
      };
      h.upstreams.push(up);
      return { kind: 'ok', session: up };
    },
    splice: async (client, upstream, o) => {
      h.splices.push({ ...o, upstream });
      client.on('error', () => {});
      client.write(o.upstreamBuffered);
      client.write(`${dialect.splicedLine}\r\n`);
      client.resume();
      await new Promise((resolve) => client.once('close', resolve));
    },
    tls: new TlsContextProvider({ cert: certs.certFile, key: certs.keyFile }),
    limits: { ...DEFAULT_LIMITS, ...opts.limits },
    ...(opts.scheduler ? { scheduler: opts.scheduler } : {}),
    logger: opts.logger ?? silentLogger(),
  };
}

/** Runs `body` against a fresh server of the dialect's sessions, then waits for every session to end. */
export async function withSessionServer<C extends ClientInfo>(
  dialect: SessionDialect<C>,
  opts: HarnessOptions,
  body: (ctx: ServerContext<C>) => Promise<void>,
): Promise<void> {
  const h: Harness<C> = { attempts: [], upstreamLogins: [], splices: [], upstreams: [] };
  const deps = sessionDeps(h, dialect, opts);
  const mode = opts.mode ?? 'implicit';
  const sessions: Promise<void>[] = [];
  const sockets = new Set<net.Socket>();
  const onSocket = (s: net.Socket) => {
    sockets.add(s);
    s.once('close', () => sockets.delete(s));
    sessions.push(dialect.handle(s, mode, { ip: s.remoteAddress ?? '', port: s.remotePort ?? 0 }, deps));
  };
  const certs = testCerts();
  const server = opts.kind === 'tls' ? tls.createServer({ cert: readFileSync(certs.certFile), key: readFileSync(certs.keyFile) }, onSocket) : net.createServer(onSocket);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as net.AddressInfo).port;
  const clients: LineClient[] = [];
  const connect = async () => {
    const c = mode === 'implicit' ? await connectTls(port) : await connectPlain(port);
    clients.push(c);
    if (dialect.greeting !== undefined) {
      const greeting = await c.next();
      if (greeting !== dialect.greeting) throw new Error(`unexpected greeting ${greeting}`);
    }
    return c;
  };
  const failure = await body({ h, port, sessions, connect }).then(
    () => undefined,
    (err: unknown) => ({ err }),
  );
  for (const c of clients) c.destroy();
  // A session that outlives its client is a leak: fail in seconds instead of hanging the run.
  const ended = await settlesWithin(Promise.all(sessions), SESSION_END_MS);
  for (const s of sockets) s.destroy();
  await new Promise((resolve) => server.close(resolve));
  if (failure) throw failure.err;
  if (!ended) throw new Error(`a session did not end within ${SESSION_END_MS} ms of its client going away`);
}

const SESSION_END_MS = 5000;

/** Whether `p` settles within `ms`. */
async function settlesWithin(p: Promise<unknown>, ms: number): Promise<boolean> {
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<false>((resolve) => (timer = setTimeout(() => resolve(false), ms)));
  try {
    return await Promise.race([p.then(() => true), late]);
  } finally {
    clearTimeout(timer);
  }
}

/**
 * For the session suites: a hang (a reply that never comes, a session that never ends) fails the
 * suite within a minute instead of at the runner's 240 s. Every test in them takes well under a second.
 */
export const SESSION_SUITE = { timeout: 60_000 };

export function b64(text: string): string {
  return Buffer.from(text, 'utf8').toString('base64');
}

export const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
