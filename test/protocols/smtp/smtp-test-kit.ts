import net from 'node:net';
import { PassThrough, type Duplex } from 'node:stream';
import type { LimitsConfig } from '../../../src/config/schema.js';
import type { Scheduler } from '../../../src/core/clock.js';
import type { AuthorizeLogin, LoginAttempt, LoginResult, VerifyResult } from '../../../src/core/login-types.js';
import { silentLogger, type Logger } from '../../../src/log/logger.js';
import { TlsContextProvider } from '../../../src/net/tls-context.js';
import { handleSmtpConnection, type SmtpClientInfo, type SmtpSessionDeps, type SmtpUpstreamLike } from '../../../src/protocols/smtp/smtp-session.js';
import { connectPlain, connectTls, DEFAULT_LIMITS, type CertFiles, type LineClient } from '../imap/imap-test-kit.js';

export const HOST = 'mx.test';
export const UPSTREAM_EHLO = ['8BITMIME', 'AUTH PLAIN LOGIN', 'BURL imap', 'CHUNKING', 'ENHANCEDSTATUSCODES', 'SIZE 1000000', 'STARTTLS', 'PIPELINING', 'XCLIENT ADDR PORT HELO'];
/** What a TLS client is offered, given UPSTREAM_EHLO. */
export const TLS_EHLO = ['250-mx.test', '250-8BITMIME', '250-CHUNKING', '250-ENHANCEDSTATUSCODES', '250-SIZE 1000000', '250-PIPELINING', '250 AUTH PLAIN LOGIN'];

export interface FakeUpstream extends SmtpUpstreamLike {
  closed: boolean;
  alive: boolean;
}

export function fakeUpstream(): FakeUpstream {
  const up: FakeUpstream = {
    socket: new PassThrough(),
    buffered: Buffer.from('250 upstream-extra\r\n'),
    closed: false,
    alive: true,
    close() {
      up.closed = true;
    },
  };
  return up;
}

export type Behaviour = (
  attempt: LoginAttempt<SmtpUpstreamLike>,
  verified: VerifyResult<SmtpUpstreamLike>,
) => Promise<LoginResult<SmtpUpstreamLike>> | LoginResult<SmtpUpstreamLike>;

export const approve: Behaviour = (_attempt, v) => {
  if (v.kind === 'ok') return { kind: 'approved', session: v.session, reason: 'tap' };
  return v.kind === 'bad-password' ? { kind: 'bad-password', reply: v.reply } : { kind: 'unavailable', reason: v.reason };
};

export interface Harness {
  deps: SmtpSessionDeps;
  attempts: LoginAttempt<SmtpUpstreamLike>[];
  upstreamLogins: { user: string; password: string; client: SmtpClientInfo }[];
  splices: { clientBuffered: Buffer; upstreamBuffered: Buffer; upstream: Duplex }[];
  upstreams: FakeUpstream[];
}

export interface HarnessOptions {
  behaviour?: Behaviour;
  limits?: Partial<LimitsConfig>;
  logger?: Logger;
  /** Makes each new fake upstream session look dead already (the upstream dropped it during the hold). */
  deadUpstreams?: number;
  /** The session's timers; a FakeClock lets a test move them instead of sleeping. */
  scheduler?: Scheduler;
}

export function makeHarness(certs: CertFiles, opts: HarnessOptions = {}): Harness {
  const h: Harness = { attempts: [], upstreamLogins: [], splices: [], upstreams: [], deps: undefined as unknown as SmtpSessionDeps };
  const behaviour = opts.behaviour ?? approve;
  let dead = opts.deadUpstreams ?? 0;
  const authorize = async (attempt: LoginAttempt<SmtpUpstreamLike>): Promise<LoginResult<SmtpUpstreamLike>> => {
    h.attempts.push(attempt);
    return behaviour(attempt, await attempt.verify());
  };
  h.deps = {
    // The core's generic signature cannot be met by a fake bound to one session type.
    authorize: authorize as unknown as AuthorizeLogin,
    upstreamLogin: async (user, password, client) => {
      h.upstreamLogins.push({ user, password, client });
      const up = fakeUpstream();
      if (dead > 0) {
        dead--;
        up.alive = false;
      }
      h.upstreams.push(up);
      return { kind: 'ok', session: up };
    },
    upstreamExtensions: async () => UPSTREAM_EHLO,
    splice: async (client, upstream, o) => {
      h.splices.push({ ...o, upstream });
      client.on('error', () => {});
      client.write(o.upstreamBuffered);
      client.write('250 SPLICED\r\n');
      client.resume();
      await new Promise((resolve) => client.once('close', resolve));
    },
    tls: new TlsContextProvider({ cert: certs.certFile, key: certs.keyFile }),
    limits: { ...DEFAULT_LIMITS, ...opts.limits },
    ...(opts.scheduler ? { scheduler: opts.scheduler } : {}),
    hostname: HOST,
    logger: opts.logger ?? silentLogger(),
  };
  return h;
}

export interface ServerContext {
  h: Harness;
  port: number;
  sessions: Promise<void>[];
  /** A client of the right kind for the mode (TLS for implicit), greeting read; destroyed after the body. */
  connect(): Promise<LineClient>;
}

/** Runs `body` against a fresh server, then checks every session ended. */
export async function withServer(
  certs: CertFiles,
  opts: HarnessOptions & { mode?: 'implicit' | 'starttls' | 'none' },
  body: (ctx: ServerContext) => Promise<void>,
): Promise<void> {
  const h = makeHarness(certs, opts);
  const mode = opts.mode ?? 'implicit';
  const sessions: Promise<void>[] = [];
  const sockets = new Set<net.Socket>();
  const server = net.createServer((s) => {
    sockets.add(s);
    s.once('close', () => sockets.delete(s));
    sessions.push(handleSmtpConnection(s, mode, { ip: s.remoteAddress ?? '', port: s.remotePort ?? 0 }, h.deps));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as net.AddressInfo).port;
  const clients: LineClient[] = [];
  const connect = async () => {
    const c = mode === 'implicit' ? await connectTls(port, certs) : await connectPlain(port);
    clients.push(c);
    const greeting = await c.next();
    if (greeting !== `220 ${HOST} ESMTP mailotp`) throw new Error(`unexpected greeting ${greeting}`);
    return c;
  };
  try {
    await body({ h, port, sessions, connect });
  } finally {
    for (const c of clients) c.destroy();
    await Promise.all(sessions);
    for (const s of sockets) s.destroy();
    await new Promise((resolve) => server.close(resolve));
  }
}

export const b64 = (text: string) => Buffer.from(text, 'utf8').toString('base64');
export const plain = (user: string, pass: string, authz = '') => b64(`${authz}\0${user}\0${pass}`);

/** Reads one (possibly multi-line) SMTP reply. */
export async function reply(c: LineClient, timeoutMs = 3000): Promise<string[]> {
  const lines: string[] = [];
  for (;;) {
    const line = await c.next(timeoutMs);
    lines.push(line);
    if (!/^\d{3}-/.test(line)) return lines;
  }
}
