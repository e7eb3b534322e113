import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { copyFileSync, mkdtempSync, rmSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import tls from 'node:tls';
import { TlsContextProvider } from '../../src/net/tls-context.js';
import { selfSignedCert, testCerts } from '../helpers/certs.js';

describe('TlsContextProvider.socketOptions (STARTTLS and PROXY upgrades)', () => {
  let dir: string;
  let provider: TlsContextProvider;
  let server: net.Server;
  let port: number;
  const clients: tls.TLSSocket[] = [];

  before(async () => {
    // A private copy of the pair, so the test can overwrite it.
    dir = mkdtempSync(join(tmpdir(), 'mailotp-ctx-certs-'));
    copyFileSync(testCerts().certFile, join(dir, 'server.crt'));
    copyFileSync(testCerts().keyFile, join(dir, 'server.key'));
    provider = new TlsContextProvider({ cert: join(dir, 'server.crt'), key: join(dir, 'server.key') });
    // What a session does on STARTTLS: a server-side TLSSocket on the plain socket it already has.
    server = net.createServer((raw) => {
      const secured = new tls.TLSSocket(raw, { ...provider.socketOptions(), isServer: true });
      secured.on('error', () => undefined);
      secured.on('data', (d: Buffer) => secured.write(d));
    });
    server.listen(0, '127.0.0.1');
    await once(server, 'listening');
    port = (server.address() as net.AddressInfo).port;
  });
  after(() => {
    for (const c of clients) c.destroy();
    server.close();
    rmSync(dir, { recursive: true, force: true });
  });

  async function connect(opts: tls.ConnectionOptions): Promise<tls.TLSSocket> {
    const s = tls.connect({ port, host: '127.0.0.1', servername: 'localhost', ...opts });
    clients.push(s);
    await once(s, 'secureConnect');
    return s;
  }

  it('serves the certificate, TLS 1.2 at least; after reload() new upgrades get the new one and open ones keep working', async () => {
    const first = await connect({ ca: testCerts().ca });
    assert.equal(first.getPeerCertificate().subject.CN, 'localhost');
    await assert.rejects(connect({ ca: testCerts().ca, maxVersion: 'TLSv1.1', minVersion: 'TLSv1' }), /protocol version|unsupported protocol|no protocols available/i);
    selfSignedCert(dir, 'server', 'reloaded');
    provider.reload();
    const second = await connect({ rejectUnauthorized: false });
    assert.equal(second.getPeerCertificate().subject.CN, 'reloaded');
    first.write('still here');
    const [echo] = (await once(first, 'data')) as [Buffer];
    assert.equal(echo.toString(), 'still here');
  });
});
