import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { copyFileSync, mkdtempSync, rmSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PassThrough } from 'node:stream';
import tls from 'node:tls';
import type { ListenerConfig } from '../../src/config/schema.js';
import type { ClientInfo } from '../../src/core/login-types.js';
import { createLogger } from '../../src/log/logger.js';
import { MailListener, type ConnectionHandler } from '../../src/net/mail-listener.js';
import { TlsContextProvider } from '../../src/net/tls-context.js';
import { selfSignedCert, testCerts } from '../helpers/certs.js';
import { proxyV1, proxyV2, startProxyForwarder } from '../helpers/proxy-forwarder.js';

interface Seen {
  client: ClientInfo;
  encrypted: boolean;
}

/** A session stand-in: records who connected, then echoes every chunk back prefixed with "echo:". */
function echoHandler(seen: Seen[]): ConnectionHandler {
  return (socket, _mode, client) => {
    seen.push({ client, encrypted: socket instanceof tls.TLSSocket && socket.encrypted });
    socket.on('data', (d: Buffer) => socket.write(Buffer.concat([Buffer.from('echo:'), d])));
    return new Promise<void>((resolve) => socket.once('close', () => resolve()));
  };
}

function listenerConfig(tlsMode: ListenerConfig['tls'], proxyProtocol: boolean): ListenerConfig {
  return { protocol: 'imap', host: '127.0.0.1', port: 0, tls: tlsMode, allowInsecure: true, proxyProtocol };
}

/** Resolves with everything the socket received once it closes, or rejects after timeoutMs. */
function receivedUntilClose(sock: net.Socket, timeoutMs = 3000): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    const timer = setTimeout(() => reject(new Error('socket not closed in time')), timeoutMs);
    sock.on('data', (d: Buffer) => chunks.push(d));
    sock.on('error', () => undefined);
    sock.once('close', () => {
      clearTimeout(timer);
      resolve(Buffer.concat(chunks));
    });
  });
}

function readSome(sock: net.Socket, until: string): Promise<string> {
  return new Promise((resolve, reject) => {
    let buf = '';
    const timer = setTimeout(() => reject(new Error(`no ${JSON.stringify(until)} in ${JSON.stringify(buf)}`)), 3000);
    sock.on('data', (d: Buffer) => {
      buf += d.toString('latin1');
      if (buf.includes(until)) {
        clearTimeout(timer);
        resolve(buf);
      }
    });
  });
}

function tlsConnect(port: number, opts: tls.ConnectionOptions = {}): Promise<tls.TLSSocket> {
  return new Promise((resolve, reject) => {
    const s = tls.connect({ host: '127.0.0.1', port, ca: testCerts().ca, servername: 'localhost', ...opts });
    s.once('secureConnect', () => resolve(s));
    s.once('error', reject);
  });
}

describe('MailListener with proxyProtocol', () => {
  const started: { stop(): Promise<void> | void }[] = [];
  const lines: Record<string, unknown>[] = [];
  const out = new PassThrough();
  out.on('data', (d: Buffer) => {
    for (const l of d.toString().split('\n')) if (l) lines.push(JSON.parse(l) as Record<string, unknown>);
  });
  const logger = createLogger({ level: 'debug', destination: out });
  let provider: TlsContextProvider;
  let certDir: string;

  before(() => {
    // A private copy of the pair, so the reload test can overwrite it.
    certDir = mkdtempSync(join(tmpdir(), 'mailotp-pp-certs-'));
    copyFileSync(testCerts().certFile, join(certDir, 'server.crt'));
    copyFileSync(testCerts().keyFile, join(certDir, 'server.key'));
    provider = new TlsContextProvider({ cert: join(certDir, 'server.crt'), key: join(certDir, 'server.key') });
  });
  after(async () => {
    for (const s of started.reverse()) await s.stop();
    rmSync(certDir, { recursive: true, force: true });
  });

  async function listen(tlsMode: ListenerConfig['tls'], proxyProtocol: boolean, seen: Seen[], options = {}): Promise<{ listener: MailListener; port: number }> {
    const listener = new MailListener(listenerConfig(tlsMode, proxyProtocol), provider, echoHandler(seen), logger, options);
    const port = await listener.listen();
    started.push({
      stop: async () => {
        listener.stopAccepting();
        listener.connections.destroyAll();
        await listener.connections.drain(2000);
      },
    });
    return { listener, port };
  }

  it('plain TCP (starttls/none): client from the header, the bytes that came with it reach the session', async () => {
    const seen: Seen[] = [];
    const { listener, port } = await listen('starttls', true, seen);
    const sock = net.connect(port, '127.0.0.1');
    sock.write(Buffer.concat([proxyV1('203.0.113.7', '192.0.2.10', 51234, 143), Buffer.from('a1 CAPABILITY\r\n')]));
    assert.equal(await readSome(sock, '\r\n'), 'echo:a1 CAPABILITY\r\n');
    assert.deepEqual(seen, [{ client: { ip: '203.0.113.7', port: 51234, localIp: '192.0.2.10', localPort: 143 }, encrypted: false }]);
    sock.destroy();
    assert.equal(await listener.connections.drain(2000), true);
  });

  it('implicit TLS: header and ClientHello in one segment, the handshake on the remainder, client from the header', async () => {
    const seen: Seen[] = [];
    const { listener, port } = await listen('implicit', true, seen);
    const header = proxyV2({ command: 'proxy', src: '203.0.113.7', dst: '192.0.2.10', sport: 40001, dport: 993, tlvs: [{ type: 0x02, value: Buffer.from('localhost') }] });
    const fwd = await startProxyForwarder({ target: { host: '127.0.0.1', port }, header: () => header, coalesce: 'first-chunk' });
    started.push(fwd);
    const s = await tlsConnect(fwd.port);
    s.write('a1 NOOP\r\n');
    assert.equal(await readSome(s, '\r\n'), 'echo:a1 NOOP\r\n');
    assert.deepEqual(seen, [{ client: { ip: '203.0.113.7', port: 40001, localIp: '192.0.2.10', localPort: 993 }, encrypted: true }]);
    s.destroy();
    assert.equal(await listener.connections.drain(2000), true, 'raw and TLS socket both accounted for and closed');
  });

  it('LOCAL and UNKNOWN keep the connection\'s own endpoints', async () => {
    const seen: Seen[] = [];
    const { port } = await listen('implicit', true, seen);
    const fwd = await startProxyForwarder({ target: { host: '127.0.0.1', port }, header: () => proxyV2({ command: 'local' }) });
    started.push(fwd);
    const s = await tlsConnect(fwd.port);
    s.write('x');
    await readSome(s, 'echo:x');
    s.destroy();
    const plain = await listen('none', true, seen);
    const p = net.connect(plain.port, '127.0.0.1', () => p.write('PROXY UNKNOWN\r\ny'));
    await readSome(p, 'echo:y');
    p.destroy();
    assert.equal(seen[0]?.client.ip, '127.0.0.1');
    assert.equal(seen[0]?.client.localPort, port);
    assert.equal(seen[1]?.client.ip, '127.0.0.1');
    assert.equal(seen[1]?.client.localPort, plain.port);
  });

  it('closes without a word: no header (a TLS client straight in), garbage, a header too slow', async () => {
    const seen: Seen[] = [];
    const { port } = await listen('implicit', true, seen, { proxyHeaderTimeoutMs: 200 });
    await assert.rejects(tlsConnect(port));
    const garbage = net.connect(port, '127.0.0.1', () => garbage.write('a1 LOGIN alice secret\r\n'));
    assert.equal((await receivedUntilClose(garbage)).length, 0);
    const startedAt = Date.now();
    const silent = net.connect(port, '127.0.0.1', () => silent.write('PROXY TCP4 203.0.113.7 '));
    assert.equal((await receivedUntilClose(silent)).length, 0);
    assert.ok(Date.now() - startedAt >= 150, 'waited for the header timeout');
    assert.deepEqual(seen, [], 'no session started');
    const refused = lines.filter((l) => l.msg === 'PROXY header refused; connection closed');
    assert.ok(refused.length >= 3);
    assert.ok(refused.every((l) => l.level === 20 && l.peerIp === '127.0.0.1'), 'debug level, naming the peer');
  });

  it('implicit TLS after a good header: a failed or stalled handshake is closed and logged at debug', async () => {
    const seen: Seen[] = [];
    const { port } = await listen('implicit', true, seen, { handshakeTimeoutMs: 200 });
    const bad = net.connect(port, '127.0.0.1', () => bad.write(Buffer.concat([proxyV1('203.0.113.7', '192.0.2.10', 1, 993), Buffer.from('not tls at all\r\n')])));
    await receivedUntilClose(bad);
    const stalled = net.connect(port, '127.0.0.1', () => stalled.write(proxyV1('203.0.113.8', '192.0.2.10', 1, 993)));
    await receivedUntilClose(stalled);
    assert.deepEqual(seen, []);
    const failed = lines.filter((l) => l.msg === 'TLS handshake failed' && l.proxiedBy === '127.0.0.1');
    assert.deepEqual(failed.map((l) => [l.level, l.clientIp]).sort(), [
      [20, '203.0.113.7'],
      [20, '203.0.113.8'],
    ]);
    assert.ok(failed.some((l) => l.err === 'handshake timed out'));
  });

  it('new connections get a reloaded certificate; open ones keep theirs', async () => {
    const seen: Seen[] = [];
    const { listener, port } = await listen('implicit', true, seen);
    const header = () => proxyV1('203.0.113.7', '192.0.2.10', 1, 993);
    const fwd = await startProxyForwarder({ target: { host: '127.0.0.1', port }, header });
    started.push(fwd);
    const first = await tlsConnect(fwd.port);
    assert.equal(first.getPeerCertificate().subject.CN, 'localhost');
    selfSignedCert(certDir, 'server', 'reloaded');
    provider.reload();
    listener.reloadTls();
    const second = await tlsConnect(fwd.port, { rejectUnauthorized: false });
    assert.equal(second.getPeerCertificate().subject.CN, 'reloaded');
    first.write('still here');
    assert.equal(await readSome(first, 'still here'), 'echo:still here');
    first.destroy();
    second.destroy();
  });

  it('without proxyProtocol nothing changes: a header is just bytes, the client is the TCP peer', async () => {
    const seen: Seen[] = [];
    const { port } = await listen('none', false, seen);
    const header = proxyV1('203.0.113.7', '192.0.2.10', 1, 143);
    const sock = net.connect({ port, host: '127.0.0.1', localAddress: '127.0.0.4' }, () => sock.write(header));
    assert.equal(await readSome(sock, '\r\n'), `echo:${header.toString()}`);
    assert.equal(seen[0]?.client.ip, '127.0.0.4');
    sock.destroy();

    const implicit = await listen('implicit', false, seen);
    const fwd = await startProxyForwarder({ target: { host: '127.0.0.1', port: implicit.port }, header: () => header });
    started.push(fwd);
    await assert.rejects(tlsConnect(fwd.port), 'a header before the ClientHello breaks the handshake instead of being believed');
    assert.equal(seen.length, 1);
  });
});
