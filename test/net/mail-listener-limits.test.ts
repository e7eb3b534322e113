import { after, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import { PassThrough } from 'node:stream';
import tls from 'node:tls';
import type { ListenerConfig } from '../../src/config/schema.js';
import { createLogger } from '../../src/log/logger.js';
import { ConnectionLimits } from '../../src/net/connection-limits.js';
import { MailListener, type ConnectionHandler } from '../../src/net/mail-listener.js';
import { TlsContextProvider } from '../../src/net/tls-context.js';
import { eventually } from '../core/core-fixture.js';
import { testCerts } from '../helpers/certs.js';
import { proxyV1 } from '../helpers/proxy-forwarder.js';

/** A session stand-in that greets, then echoes. */
const greeter: ConnectionHandler = (socket) => {
  socket.write('HELLO\r\n');
  socket.on('data', (d: Buffer) => socket.write(Buffer.concat([Buffer.from('echo:'), d])));
  return new Promise<void>((resolve) => socket.once('close', () => resolve()));
};

/** The first line the server sends, and whether it then closed the connection. */
function firstLine(sock: net.Socket): Promise<{ line: string; closed: Promise<void> }> {
  const closed = new Promise<void>((resolve) => sock.once('close', () => resolve()));
  sock.on('error', () => undefined);
  return new Promise((resolve, reject) => {
    let buf = '';
    const timer = setTimeout(() => reject(new Error(`no line in ${JSON.stringify(buf)}`)), 3000);
    sock.on('data', (d: Buffer) => {
      buf += d.toString('latin1');
      const end = buf.indexOf('\r\n');
      if (end >= 0) {
        clearTimeout(timer);
        resolve({ line: buf.slice(0, end), closed });
      }
    });
  });
}

describe('MailListener connection caps', () => {
  const stops: (() => Promise<void>)[] = [];
  const events: Record<string, unknown>[] = [];
  const out = new PassThrough();
  out.on('data', (d: Buffer) => {
    for (const l of d.toString().split('\n')) if (l) events.push(JSON.parse(l) as Record<string, unknown>);
  });
  const logger = createLogger({ level: 'info', destination: out });
  after(async () => {
    for (const s of stops.reverse()) await s();
  });

  async function listen(tlsMode: ListenerConfig['tls'], limits: ConnectionLimits): Promise<number> {
    const config: ListenerConfig = { protocol: 'imap', host: '127.0.0.1', port: 0, tls: tlsMode, allowInsecure: true, proxyProtocol: true };
    const provider = new TlsContextProvider({ cert: testCerts().certFile, key: testCerts().keyFile });
    const listener = new MailListener(config, provider, greeter, logger, { limits, busyLine: 'BUSY try later' });
    const port = await listener.listen();
    stops.push(async () => {
      listener.stopAccepting();
      listener.connections.destroyAll();
      await listener.connections.drain(2000);
    });
    return port;
  }

  /** A plain connection that claims to come from ip (PROXY v1). */
  function from(port: number, ip: string): net.Socket {
    const s = net.connect(port, '127.0.0.1');
    s.write(proxyV1(ip, '127.0.0.1', 40000, 143));
    return s;
  }

  it('refuses past the per-IP cap with the busy line and a close; other addresses get in; closing frees places', async () => {
    const limits = new ConnectionLimits({ maxConnections: 100, maxConnectionsPerIp: 2 });
    const port = await listen('none', limits);
    const a1 = from(port, '203.0.113.7');
    const a2 = from(port, '203.0.113.7');
    assert.equal((await firstLine(a1)).line, 'HELLO');
    assert.equal((await firstLine(a2)).line, 'HELLO');
    const a3 = from(port, '203.0.113.7');
    const refused = await firstLine(a3);
    assert.equal(refused.line, 'BUSY try later');
    await refused.closed;
    const b = from(port, '198.51.100.1');
    assert.equal((await firstLine(b)).line, 'HELLO');
    assert.equal(limits.open('203.0.113.7'), 2);

    a1.destroy();
    await eventually(async () => limits.open('203.0.113.7') === 1);
    const a4 = from(port, '203.0.113.7');
    assert.equal((await firstLine(a4)).line, 'HELLO');
    for (const s of [a2, a4, b]) s.destroy();
    await eventually(async () => limits.open() === 0);
    assert.equal(limits.open('203.0.113.7'), 0, 'no place is left behind');
    const refusedEvent = events.find((e) => e.event === 'connection.refused');
    assert.equal(refusedEvent?.cap, 'maxConnectionsPerIp');
    assert.equal(refusedEvent?.clientIp, '203.0.113.7');
  });

  it('refuses past the total cap whatever the address, and tells an implicit-TLS client inside TLS', async () => {
    const limits = new ConnectionLimits({ maxConnections: 3, maxConnectionsPerIp: 50 });
    const port = await listen('implicit', limits);
    const open: tls.TLSSocket[] = [];
    const connect = (ip: string): tls.TLSSocket => {
      const raw = net.connect(port, '127.0.0.1');
      raw.write(proxyV1(ip, '127.0.0.1', 40000, 993));
      const s = tls.connect({ socket: raw, ca: testCerts().ca, servername: 'localhost' });
      open.push(s);
      return s;
    };
    for (let i = 1; i <= 3; i++) assert.equal((await firstLine(connect(`192.0.2.${i}`))).line, 'HELLO');
    const refused = await firstLine(connect('192.0.2.99'));
    assert.equal(refused.line, 'BUSY try later');
    await refused.closed;
    assert.equal(limits.open(), 3);
    assert.equal(events.filter((e) => e.event === 'connection.refused').at(-1)?.cap, 'maxConnections');
    for (const s of open) s.destroy();
    await eventually(async () => limits.open() === 0);
  });
});
