import assert from 'node:assert/strict';
import { once } from 'node:events';
import { readFileSync } from 'node:fs';
import net from 'node:net';
import { after, before, describe, test } from 'node:test';
import tls from 'node:tls';
import type { UpstreamEndpoint } from '../../src/config/schema.js';
import type { ClientInfo, VerifyResult } from '../../src/core/login-types.js';
import { silentLogger } from '../../src/log/logger.js';
import { plainIp, xclientAddr } from '../../src/upstream/client-address.js';
import type { ResponseReader } from '../../src/upstream/response-reader.js';
import { UpstreamClient, type UpstreamDialect } from '../../src/upstream/upstream-client.js';
import { unavailable } from '../../src/upstream/upstream-errors.js';
import { UpstreamSession } from '../../src/upstream/upstream-session.js';
import { testCerts } from '../helpers/certs.js';

/**
 * A toy line protocol in the POP3 manner, spoken by a real local TCP/TLS server, so the shared
 * framework is tested on its own: greeting "+OK <text>", STLS, "LOGIN <user> <password>", CAPS, QUIT.
 */
class ToyLink {
  constructor(
    readonly socket: net.Socket,
    readonly reader: ResponseReader,
  ) {}

  async command(line: string, timeoutMs: number): Promise<string> {
    this.socket.write(`${line}\r\n`);
    return this.reader.readLine(timeoutMs);
  }
}

const TOY_DIALECT: UpstreamDialect<ToyLink, string> = {
  component: 'toy-upstream',
  imapLiterals: false,
  starttlsVerb: 'STLS',
  unsendable: /[\0\r\n]/,
  link: (socket, reader) => new ToyLink(socket, reader),
  greet: async (link, timeoutMs) => {
    const line = await link.reader.readLine(timeoutMs);
    if (!line.startsWith('+OK ')) throw unavailable(`greeting ${line}`);
    return line.slice(4);
  },
  starttls: async (link, timeoutMs) => {
    const answer = await link.command('STLS', timeoutMs);
    if (!answer.startsWith('+OK')) throw unavailable(`upstream refused STLS: ${answer}`);
  },
  capabilityList: { fallback: ['FALLBACK'], readLog: (caps) => [{ caps }, 'toy caps read'], failedMessage: 'toy caps failed' },
  goodbye: () => 'QUIT',
};

class ToyUpstream extends UpstreamClient<ToyLink, string> {
  constructor(endpoint: UpstreamEndpoint) {
    super(endpoint, silentLogger(), TOY_DIALECT, {}, undefined);
  }

  protected async readCapabilities(): Promise<string[]> {
    const { link } = await this.open();
    try {
      return (await link.command('CAPS', this.timeoutMs)).split(' ').slice(1);
    } finally {
      this.quit(link);
    }
  }

  login(user: string, password: string, signal?: AbortSignal): Promise<VerifyResult<UpstreamSession>> {
    return this.loginFrame(user, password, CLIENT, signal, async ({ link, greeting }) => {
      const answer = await link.command(`LOGIN ${user} ${password} (greeted: ${greeting})`, this.loginTimeoutMs);
      if (answer.startsWith('+OK')) return { kind: 'ok', session: new UpstreamSession(link.socket, link.reader.takeBuffered(), 'QUIT') };
      this.quit(link);
      return { kind: 'bad-password', reply: answer };
    });
  }
}

const CLIENT: ClientInfo = { ip: '::ffff:198.51.100.7', port: 40001 };

interface ToyBehaviour {
  tls: 'none' | 'implicit';
  /** Greet at all (false: say nothing, for the deadline tests). */
  greet?: boolean;
  /** The answer to STLS, and bytes sent in clear right after it (the injection of CVE-2011-0411). */
  stls?: { answer: string; injected?: string };
  /** Never answer LOGIN (for the abort test). */
  holdLogin?: boolean;
}

interface ToyServer {
  port: number;
  /** Every line each connection sent, one array per connection, in order. */
  connections: string[][];
  /** Resolves when the nth connection (from 1) has closed. */
  closed(n: number): Promise<void>;
  close(): Promise<void>;
}

async function toyServer(behaviour: ToyBehaviour): Promise<ToyServer> {
  const { certFile, keyFile } = testCerts();
  const secureContext = tls.createSecureContext({ cert: readFileSync(certFile), key: readFileSync(keyFile) });
  const connections: string[][] = [];
  const closes: Promise<void>[] = [];
  const sockets = new Set<net.Socket>();

  const speak = (socket: net.Socket, lines: string[], greet: boolean) => {
    sockets.add(socket);
    if (greet) socket.write('+OK toy ready\r\n');
    let buffer = '';
    const onData = (chunk: Buffer) => {
      buffer += chunk.toString('utf8');
      let lf: number;
      while ((lf = buffer.indexOf('\r\n')) >= 0) {
        const line = buffer.slice(0, lf);
        buffer = buffer.slice(lf + 2);
        lines.push(line);
        if (line === 'STLS' && behaviour.stls) {
          socket.removeListener('data', onData);
          socket.write(`${behaviour.stls.answer}\r\n${behaviour.stls.injected ?? ''}`);
          if (!behaviour.stls.answer.startsWith('+OK')) return;
          const secure = new tls.TLSSocket(socket, { isServer: true, secureContext });
          secure.on('error', () => undefined);
          // After STLS the conversation goes on over TLS, without a new greeting.
          speak(secure, lines, false);
          return;
        }
        if (line === 'QUIT') socket.end('+OK bye\r\n');
        else if (line === 'CAPS') socket.write('+OK TOP UIDL\r\n');
        else if (line.startsWith('LOGIN ') && !behaviour.holdLogin) socket.write(line.startsWith('LOGIN alice secret ') ? '+OK in\r\n' : '-ERR no\r\n');
      }
    };
    socket.on('data', onData);
  };
  const onConnection = (socket: net.Socket) => {
    const lines: string[] = [];
    connections.push(lines);
    socket.on('error', () => undefined);
    closes.push(once(socket, 'close').then(() => undefined));
    speak(socket, lines, behaviour.greet !== false);
  };
  const server = behaviour.tls === 'implicit' ? tls.createServer({ cert: readFileSync(certFile), key: readFileSync(keyFile) }, onConnection) : net.createServer(onConnection);
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  return {
    port: (server.address() as net.AddressInfo).port,
    connections,
    closed: async (n) => {
      while (closes.length < n) await new Promise((r) => setImmediate(r));
      await closes[n - 1];
    },
    close: async () => {
      for (const s of sockets) s.destroy();
      server.close();
      await once(server, 'close');
    },
  };
}

function endpoint(port: number, tlsMode: UpstreamEndpoint['tls'], over: Partial<UpstreamEndpoint> = {}): UpstreamEndpoint {
  return { host: '127.0.0.1', port, tls: tlsMode, verify: true, ca: testCerts().caFile, servername: 'localhost', connectTimeout: 2000, ...over };
}

function okSession(r: VerifyResult<UpstreamSession>): UpstreamSession {
  assert.equal(r.kind, 'ok', JSON.stringify(r));
  return (r as { session: UpstreamSession }).session;
}

const servers: ToyServer[] = [];
async function started(behaviour: ToyBehaviour): Promise<ToyServer> {
  const s = await toyServer(behaviour);
  servers.push(s);
  return s;
}

before(() => {
  testCerts();
});

after(async () => {
  for (const s of servers) await s.close();
});

describe('UpstreamClient (the framework every protocol shares) against a real local server', () => {
  test('connects plain, over implicit TLS and with STARTTLS; the greeting is read once and kept across STARTTLS', async () => {
    for (const [behaviour, mode] of [
      [{ tls: 'none' }, 'none'],
      [{ tls: 'implicit' }, 'implicit'],
      [{ tls: 'none', stls: { answer: '+OK go ahead' } }, 'starttls'],
    ] as const) {
      const server = await started(behaviour);
      const session = okSession(await new ToyUpstream(endpoint(server.port, mode)).login('alice', 'secret'));
      assert.equal(session.socket instanceof tls.TLSSocket, mode !== 'none', mode);
      assert.equal(session.socket.listenerCount('data'), 0);
      assert.ok(session.socket.isPaused());
      const expected = mode === 'starttls' ? ['STLS'] : [];
      assert.deepEqual(server.connections, [[...expected, 'LOGIN alice secret (greeted: toy ready)']], mode);
      session.close();
      await server.closed(1);
      assert.deepEqual(server.connections[0]!.at(-1), 'QUIT');
    }
  });

  test('a refused STARTTLS and bytes injected after its go-ahead are temporary failures, never a login', async () => {
    const refused = await started({ tls: 'none', stls: { answer: '-ERR not here' } });
    const r1 = await new ToyUpstream(endpoint(refused.port, 'starttls')).login('alice', 'secret');
    assert.equal(r1.kind, 'unavailable');
    assert.match((r1 as { reason: string }).reason, /^upstream 127\.0\.0\.1:\d+: upstream refused STLS: -ERR not here \(MAILOTP_ERR_UPSTREAM_UNAVAILABLE\)$/);

    const injected = await started({ tls: 'none', stls: { answer: '+OK go ahead', injected: '+OK in\r\n' } });
    const r2 = await new ToyUpstream(endpoint(injected.port, 'starttls')).login('alice', 'secret');
    assert.equal(r2.kind, 'unavailable');
    assert.match((r2 as { reason: string }).reason, /: upstream sent data after its STLS answer \(MAILOTP_ERR_UPSTREAM_PROTOCOL\)$/);
    assert.deepEqual(injected.connections, [['STLS']]);
  });

  test('silence, a refused port and a name the protocol cannot carry map to the existing results', async () => {
    const silent = await started({ tls: 'none', greet: false });
    assert.deepEqual(await new ToyUpstream(endpoint(silent.port, 'none', { connectTimeout: 300 })).login('alice', 'secret'), {
      kind: 'unavailable',
      reason: 'no answer from upstream within 300 ms',
    });
    // With STARTTLS the greeting is part of the connect deadline.
    const r = await new ToyUpstream(endpoint(silent.port, 'starttls', { connectTimeout: 300 })).login('alice', 'secret');
    assert.deepEqual(r, { kind: 'unavailable', reason: `upstream 127.0.0.1:${silent.port}: no connection within 300 ms` });

    const closed = net.createServer();
    closed.listen(0, '127.0.0.1');
    await once(closed, 'listening');
    const port = (closed.address() as net.AddressInfo).port;
    closed.close();
    await once(closed, 'close');
    const refused = await new ToyUpstream(endpoint(port, 'none')).login('alice', 'secret');
    assert.equal(refused.kind, 'unavailable');
    assert.match((refused as { reason: string }).reason, /ECONNREFUSED/);

    const server = await started({ tls: 'none' });
    assert.deepEqual(await new ToyUpstream(endpoint(server.port, 'none')).login('alice', 'sec\r\nret'), { kind: 'bad-password' });
    assert.deepEqual(await new ToyUpstream(endpoint(server.port, 'none')).login('alice', 'wrong'), { kind: 'bad-password', reply: '-ERR no' });
    await server.closed(1);
    assert.deepEqual(server.connections, [['LOGIN alice wrong (greeted: toy ready)', 'QUIT']]);
  });

  test('an abort while the login is answered destroys the upstream connection and says "aborted"', async () => {
    const server = await started({ tls: 'implicit', holdLogin: true });
    const controller = new AbortController();
    const pending = new ToyUpstream(endpoint(server.port, 'implicit')).login('alice', 'secret', controller.signal);
    while (server.connections[0]?.length !== 1) await new Promise((r) => setTimeout(r, 10));
    controller.abort();
    assert.deepEqual(await pending, { kind: 'unavailable', reason: 'aborted' });
    await server.closed(1);
    assert.deepEqual(server.connections, [['LOGIN alice secret (greeted: toy ready)']]);

    const early = AbortSignal.abort();
    assert.deepEqual(await new ToyUpstream(endpoint(server.port, 'implicit')).login('alice', 'secret', early), { kind: 'unavailable', reason: 'aborted' });
  });

  test('the capability list is read on a connection of its own that ends with the goodbye', async () => {
    const server = await started({ tls: 'none', stls: { answer: '+OK go ahead' } });
    const up = new ToyUpstream(endpoint(server.port, 'starttls'));
    await up.start();
    assert.deepEqual(await up.capabilities(), ['TOP', 'UIDL']);
    await server.closed(1);
    assert.deepEqual(server.connections, [['STLS', 'CAPS', 'QUIT']]);
    up.stop();

    const down = new ToyUpstream(endpoint(1, 'none', { connectTimeout: 300 }));
    assert.deepEqual(await down.capabilities(), ['FALLBACK']);
  });
});

describe('client address normalisation', () => {
  test('an IPv4-mapped IPv6 address is the plain IPv4 one; others stay as they are', () => {
    assert.equal(plainIp('::ffff:192.0.2.1'), '192.0.2.1');
    assert.equal(plainIp('::FFFF:192.0.2.1'), '192.0.2.1');
    assert.equal(plainIp('192.0.2.1'), '192.0.2.1');
    assert.equal(plainIp('2001:db8::1'), '2001:db8::1');
    assert.equal(plainIp('::ffff:c000:201'), '::ffff:c000:201');
  });

  test('XCLIENT ADDR: IPv4 plain, IPv6 with the IPV6: prefix', () => {
    assert.equal(xclientAddr('::ffff:192.0.2.1'), '192.0.2.1');
    assert.equal(xclientAddr('192.0.2.1'), '192.0.2.1');
    assert.equal(xclientAddr('2001:db8::1'), 'IPV6:2001:db8::1');
    assert.equal(xclientAddr('::1'), 'IPV6:::1');
  });
});
