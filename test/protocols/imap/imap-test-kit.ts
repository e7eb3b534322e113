import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { PassThrough, type Duplex } from 'node:stream';
import tls from 'node:tls';
import type { LimitsConfig } from '../../../src/config/schema.js';
import type { Scheduler } from '../../../src/core/clock.js';
import type { AuthorizeLogin, ClientInfo, LoginAttempt, LoginResult, VerifyResult } from '../../../src/core/login-types.js';
import { silentLogger, type Logger } from '../../../src/log/logger.js';
import { TlsContextProvider } from '../../../src/net/tls-context.js';
import { handleImapConnection, type ImapSessionDeps, type ImapUpstreamLike } from '../../../src/protocols/imap/imap-session.js';

export interface CertFiles {
  dir: string;
  certFile: string;
  keyFile: string;
  cert: Buffer;
}

/** A throwaway self-signed certificate for localhost and 127.0.0.1. */
export function makeSelfSignedCert(): CertFiles {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'mailotp-imap-test-'));
  const certFile = path.join(dir, 'cert.pem');
  const keyFile = path.join(dir, 'key.pem');
  execFileSync(
    'openssl',
    [
      'req', '-x509', '-nodes', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256',
      '-keyout', keyFile, '-out', certFile, '-days', '1', '-subj', '/CN=localhost',
      '-addext', 'subjectAltName=DNS:localhost,IP:127.0.0.1',
    ],
    { stdio: ['ignore', 'ignore', 'pipe'] },
  );
  return { dir, certFile, keyFile, cert: readFileSync(certFile) };
}

export function removeCert(c: CertFiles | undefined): void {
  if (c) rmSync(c.dir, { recursive: true, force: true });
}

export const DEFAULT_LIMITS: LimitsConfig = {
  maxLineLength: 8192,
  maxLiteralSize: 8192,
  maxCommandsBeforeLogin: 50,
  maxFailedLoginsPerConnection: 3,
  preLoginIdleTimeout: 60_000,
  failedLoginsPerUser: 10,
  failedLoginsPerIp: 30,
  failedLoginWindow: 900_000,
  pushesPerUserPerHour: 10,
  maxConnections: 10_000,
  maxConnectionsPerIp: 50,
  maxHeldLoginsPerUser: 20,
};

export const UPSTREAM_CAPS = ['IMAP4rev1', 'SASL-IR', 'LOGIN-REFERRALS', 'ID', 'ENABLE', 'IDLE', 'LITERAL+', 'STARTTLS', 'AUTH=PLAIN', 'XCLIENT'];
export const LOGIN_TEXT = '[CAPABILITY IMAP4rev1 IDLE] Logged in';

export interface FakeUpstream extends ImapUpstreamLike {
  closed: boolean;
}

export function fakeUpstream(): FakeUpstream {
  const up: FakeUpstream = {
    socket: new PassThrough(),
    loginResponseText: LOGIN_TEXT,
    buffered: Buffer.from('* upstream-extra\r\n'),
    closed: false,
    close() {
      up.closed = true;
    },
  };
  return up;
}

export type Behaviour = (
  attempt: LoginAttempt<ImapUpstreamLike>,
  verified: VerifyResult<ImapUpstreamLike>,
) => Promise<LoginResult<ImapUpstreamLike>> | LoginResult<ImapUpstreamLike>;

/** The core's answer when two-factor approval passes: whatever verify said, approved on success. */
export const approve: Behaviour = (_attempt, v) => {
  if (v.kind === 'ok') return { kind: 'approved', session: v.session, reason: 'tap' };
  return v.kind === 'bad-password' ? { kind: 'bad-password', reply: v.reply } : { kind: 'unavailable', reason: v.reason };
};

export interface UpstreamLoginCall {
  user: string;
  password: string;
  client: ClientInfo;
  signal: AbortSignal;
}

export interface SpliceCall {
  clientBuffered: Buffer;
  upstreamBuffered: Buffer;
  upstream: Duplex;
}

export interface Harness {
  deps: ImapSessionDeps;
  attempts: LoginAttempt<ImapUpstreamLike>[];
  upstreamLogins: UpstreamLoginCall[];
  splices: SpliceCall[];
  upstreams: FakeUpstream[];
}

export interface HarnessOptions {
  behaviour?: Behaviour;
  limits?: Partial<LimitsConfig>;
  logger?: Logger;
  progressIntervalMs?: number;
  /** The session's timers; a FakeClock lets a test move them instead of sleeping. */
  scheduler?: Scheduler;
}

export function makeHarness(certs: CertFiles, opts: HarnessOptions = {}): Harness {
  const h: Harness = {
    attempts: [],
    upstreamLogins: [],
    splices: [],
    upstreams: [],
    deps: undefined as unknown as ImapSessionDeps,
  };
  const behaviour = opts.behaviour ?? approve;
  const authorize = async (attempt: LoginAttempt<ImapUpstreamLike>): Promise<LoginResult<ImapUpstreamLike>> => {
    h.attempts.push(attempt);
    return behaviour(attempt, await attempt.verify());
  };
  h.deps = {
    // The core's generic signature cannot be met by a fake bound to one session type.
    authorize: authorize as unknown as AuthorizeLogin,
    upstreamLogin: async (user, password, client, signal) => {
      h.upstreamLogins.push({ user, password, client, signal });
      const up = fakeUpstream();
      h.upstreams.push(up);
      return { kind: 'ok', session: up };
    },
    upstreamCapabilities: async () => UPSTREAM_CAPS,
    splice: async (client, upstream, o) => {
      h.splices.push({ ...o, upstream });
      client.on('error', () => {});
      client.write(o.upstreamBuffered);
      client.write('* SPLICED\r\n');
      client.resume();
      await new Promise((resolve) => client.once('close', resolve));
    },
    tls: new TlsContextProvider({ cert: certs.certFile, key: certs.keyFile }),
    limits: { ...DEFAULT_LIMITS, ...opts.limits },
    ...(opts.scheduler ? { scheduler: opts.scheduler } : {}),
    progressIntervalMs: opts.progressIntervalMs ?? 50,
    logger: opts.logger ?? silentLogger(),
  };
  return h;
}

export interface TestServer {
  port: number;
  sessions: Promise<void>[];
  close(): Promise<void>;
}

/**
 * kind 'net': a plain TCP listener (implicit mode then does the TLS handshake in the session);
 * kind 'tls': a tls.Server handing over already-secured sockets.
 */
export async function startServer(
  h: Harness,
  mode: 'implicit' | 'starttls' | 'none',
  certs: CertFiles,
  kind: 'net' | 'tls' = 'net',
): Promise<TestServer> {
  const sessions: Promise<void>[] = [];
  const sockets = new Set<net.Socket>();
  const onSocket = (s: net.Socket) => {
    sockets.add(s);
    s.once('close', () => sockets.delete(s));
    sessions.push(handleImapConnection(s, mode, { ip: s.remoteAddress ?? '', port: s.remotePort ?? 0 }, h.deps));
  };
  const server =
    kind === 'tls'
      ? tls.createServer({ cert: certs.cert, key: readFileSync(certs.keyFile) }, onSocket)
      : net.createServer(onSocket);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as net.AddressInfo).port;
  return {
    port,
    sessions,
    close: async () => {
      for (const s of sockets) s.destroy();
      await new Promise((resolve) => server.close(resolve));
    },
  };
}

/** A line-oriented test client that remembers everything the server said. */
export class LineClient {
  readonly lines: string[] = [];
  private cursor = 0;
  private pending = '';
  private wake: (() => void) | undefined;
  ended = false;
  readonly closed: Promise<void>;

  constructor(readonly sock: net.Socket) {
    sock.on('data', this.onData);
    sock.on('error', () => {});
    this.closed = new Promise((resolve) =>
      sock.once('close', () => {
        this.ended = true;
        this.wake?.();
        resolve();
      }),
    );
  }

  private readonly onData = (chunk: Buffer): void => {
    this.pending += chunk.toString('latin1');
    let i: number;
    while ((i = this.pending.indexOf('\r\n')) >= 0) {
      this.lines.push(this.pending.slice(0, i));
      this.pending = this.pending.slice(i + 2);
    }
    this.wake?.();
  };

  write(data: string | Buffer): void {
    this.sock.write(data);
  }

  /** The next line the server sent; throws when the connection closed first. */
  async next(timeoutMs = 3000): Promise<string> {
    const deadline = Date.now() + timeoutMs;
    while (this.cursor >= this.lines.length) {
      if (this.ended) throw new Error(`connection closed; lines so far: ${JSON.stringify(this.lines)}`);
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`no line within ${timeoutMs} ms; lines so far: ${JSON.stringify(this.lines)}`);
      await new Promise<void>((resolve) => {
        const t = setTimeout(resolve, left);
        this.wake = () => {
          clearTimeout(t);
          resolve();
        };
      });
      this.wake = undefined;
    }
    return this.lines[this.cursor++] ?? '';
  }

  /** Lines up to and including the first one starting with `prefix`. */
  async until(prefix: string, timeoutMs = 3000): Promise<string[]> {
    const seen: string[] = [];
    for (;;) {
      const line = await this.next(timeoutMs);
      seen.push(line);
      if (line.startsWith(prefix)) return seen;
    }
  }

  /** Resolves when the server closed the connection, after reading every line it sent. */
  async expectClosed(timeoutMs = 3000): Promise<void> {
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<never>((_r, reject) => {
      timer = setTimeout(() => reject(new Error('server did not close the connection')), timeoutMs);
    });
    try {
      await Promise.race([this.closed, timeout]);
    } finally {
      clearTimeout(timer);
    }
  }

  /** Lines received and not yet consumed by next(). */
  rest(): string[] {
    return this.lines.slice(this.cursor);
  }

  detach(): net.Socket {
    this.sock.removeListener('data', this.onData);
    return this.sock;
  }

  destroy(): void {
    this.sock.destroy();
  }
}

export async function connectPlain(port: number): Promise<LineClient> {
  const sock = net.connect(port, '127.0.0.1');
  await new Promise<void>((resolve, reject) => {
    sock.once('connect', resolve);
    sock.once('error', reject);
  });
  return new LineClient(sock);
}

export async function connectTls(port: number, certs: CertFiles): Promise<LineClient> {
  const sock = tls.connect({ port, host: '127.0.0.1', ca: certs.cert, servername: 'localhost' });
  await new Promise<void>((resolve, reject) => {
    sock.once('secureConnect', resolve);
    sock.once('error', reject);
  });
  return new LineClient(sock);
}

/** Client side of STARTTLS, after the server's OK was read. */
export async function upgradeClient(c: LineClient, certs: CertFiles): Promise<LineClient> {
  const raw = c.detach();
  const sock = tls.connect({ socket: raw, ca: certs.cert, servername: 'localhost' });
  await new Promise<void>((resolve, reject) => {
    sock.once('secureConnect', resolve);
    sock.once('error', reject);
  });
  return new LineClient(sock);
}

export function b64(text: string): string {
  return Buffer.from(text, 'utf8').toString('base64');
}

export const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

export interface ServerContext {
  h: Harness;
  port: number;
  sessions: Promise<void>[];
  /** A client of the right kind for the mode (TLS for implicit); destroyed after the body. */
  connect(): Promise<LineClient>;
}

/** Runs `body` against a fresh server, then checks every session ended. */
export async function withServer(
  certs: CertFiles,
  opts: HarnessOptions & { mode?: 'implicit' | 'starttls' | 'none'; kind?: 'net' | 'tls' },
  body: (ctx: ServerContext) => Promise<void>,
): Promise<void> {
  const h = makeHarness(certs, opts);
  const mode = opts.mode ?? 'implicit';
  const server = await startServer(h, mode, certs, opts.kind ?? 'net');
  const clients: LineClient[] = [];
  const connect = async () => {
    const c = mode === 'implicit' ? await connectTls(server.port, certs) : await connectPlain(server.port);
    clients.push(c);
    return c;
  };
  try {
    await body({ h, port: server.port, sessions: server.sessions, connect });
  } finally {
    for (const c of clients) c.destroy();
    await Promise.all(server.sessions);
    await server.close();
  }
}

/** Reads up to the tagged OK of an approved login and the fake splice's first bytes. */
export async function expectLoggedIn(c: LineClient, tag = 'a'): Promise<string[]> {
  const lines = await c.until(`${tag} `);
  assert.equal(lines.at(-1), `${tag} OK ${LOGIN_TEXT}`);
  assert.deepEqual(await c.until('* SPLICED'), ['* upstream-extra', '* SPLICED']);
  return lines;
}
