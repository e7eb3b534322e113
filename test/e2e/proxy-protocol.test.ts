import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import tls from 'node:tls';
import { startDovecot, type DovecotHandle } from '../helpers/dovecot.js';
import { testCerts } from '../helpers/certs.js';
import { proxyV1, proxyV2, startProxyForwarder, type ProxyForwarder } from '../helpers/proxy-forwarder.js';
import { BIN, decide, deviceApi, enrol, imapClient, python, PY_IMAP_LOGIN, runBin, waitForRequest, type MailotpProcess } from './harness.js';

const USERS = [
  { user: 'alice', password: 'alice-pass-1' },
  { user: 'bob', password: 'bob-pass-2' },
];
const pw = (u: string) => USERS.find((x) => x.user === u)!.password;
/** What the balancer claims: a documentation address (RFC 5737) nothing on this host owns. */
const CLIENT_IP = '203.0.113.7';
const BALANCER_VIP = '192.0.2.10';

interface Running {
  /** imaps with proxyProtocol: true, and a plain imaps next to it. */
  proxied: number;
  direct: number;
  portal: number;
  cli: MailotpProcess['cli'];
  events(): Record<string, unknown>[];
  stop(): Promise<void>;
}

/** harness.startMailotp, with the two listeners this test needs (its listener set is fixed). */
async function startProxiedMailotp(dovecot: DovecotHandle): Promise<Running> {
  const certs = testCerts();
  const dir = mkdtempSync(join(tmpdir(), 'mailotp-e2e-pp-'));
  const configFile = join(dir, 'mailotp.json');
  writeFileSync(
    configFile,
    JSON.stringify({
      listeners: [
        { protocol: 'imap', host: '127.0.0.1', port: 0, tls: 'implicit', proxyProtocol: true },
        { protocol: 'imap', host: '127.0.0.1', port: 0, tls: 'implicit' },
      ],
      tls: { cert: certs.certFile, key: certs.keyFile },
      upstream: { imap: { host: dovecot.host, port: dovecot.ports.imaps, tls: 'implicit', ca: certs.caFile, servername: 'localhost' } },
      store: { driver: 'sqlite', path: 'data/mailotp.db' },
      daemonOtp: { holdTime: '10s', progressInterval: '1s' },
      portal: { host: '127.0.0.1', port: 0, tls: true, publicUrl: 'https://localhost:8443' },
      shutdown: { drainTimeout: '2s' },
      log: { level: 'debug' },
    }),
  );
  const child: ChildProcess = spawn(process.execPath, [BIN, 'start', '--config', configFile], { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  let err = '';
  child.stderr!.on('data', (d: Buffer) => (err += d.toString()));
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  const events = () =>
    out
      .split('\n')
      .filter((l) => l.startsWith('{'))
      .flatMap((l) => {
        try {
          return [JSON.parse(l) as Record<string, unknown>];
        } catch {
          return [];
        }
      });
  const started = await new Promise<Record<string, unknown>>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`mailotp did not start; stderr: ${err}\nstdout: ${out.slice(-3000)}`)), 15_000);
    const check = () => {
      const hit = events().find((e) => e.msg === 'mailotp started');
      if (hit) {
        clearTimeout(timer);
        resolve(hit);
      }
    };
    child.stdout!.on('data', (d: Buffer) => {
      out += d.toString();
      check();
    });
    child.once('exit', () => {
      clearTimeout(timer);
      reject(new Error(`mailotp exited; stderr: ${err}\nstdout: ${out.slice(-3000)}`));
    });
  });
  // Listed in config order.
  const [proxied, direct] = (started.listeners as { port: number }[]).map((l) => l.port);
  return {
    proxied: proxied!,
    direct: direct!,
    portal: (started.portal as { port: number }).port,
    cli: (args) => runBin([...args, '--config', configFile]),
    events,
    async stop() {
      if (child.exitCode === null) child.kill('SIGTERM');
      await exited;
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** Resolves with what the server sent before it closed; rejects when it keeps the connection open. */
function closedWithoutReply(sock: net.Socket, timeoutMs = 5000): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    const timer = setTimeout(() => reject(new Error('connection still open')), timeoutMs);
    sock.on('data', (d: Buffer) => chunks.push(d));
    sock.on('error', () => undefined);
    sock.once('close', () => {
      clearTimeout(timer);
      resolve(Buffer.concat(chunks));
    });
  });
}

describe('PROXY protocol behind a TCP load balancer (real Dovecot, real binary)', () => {
  let dovecot: DovecotHandle;
  let m: Running;
  let v2: ProxyForwarder;
  let v1: ProxyForwarder;
  let toDirect: ProxyForwarder;
  const tokens: Record<string, string> = {};

  before(async () => {
    dovecot = await startDovecot({ users: USERS });
    m = await startProxiedMailotp(dovecot);
    // enrol() only runs the CLI; the rest of the harness process handle is not needed for it.
    for (const u of ['alice', 'bob']) tokens[u] = await enrol({ cli: m.cli } as MailotpProcess, u);
    // Header and ClientHello in one segment (v2), and the header alone on connect (v1, HAProxy's way).
    v2 = await startProxyForwarder({
      target: { host: '127.0.0.1', port: m.proxied },
      header: (c) => proxyV2({ command: 'proxy', src: CLIENT_IP, dst: BALANCER_VIP, sport: c.remotePort ?? 1, dport: 993, tlvs: [{ type: 0x01, value: Buffer.from('imap') }] }),
      coalesce: 'first-chunk',
    });
    v1 = await startProxyForwarder({ target: { host: '127.0.0.1', port: m.proxied }, header: (c) => proxyV1(CLIENT_IP, BALANCER_VIP, c.remotePort ?? 1, 993) });
    toDirect = await startProxyForwarder({ target: { host: '127.0.0.1', port: m.direct }, header: (c) => proxyV1(CLIENT_IP, BALANCER_VIP, c.remotePort ?? 1, 993) });
  });
  after(async () => {
    await Promise.all([v2, v1, toDirect].map((f) => f?.stop()));
    await m?.stop();
    await dovecot?.stop();
  });

  it('the request carries the client address from a v2 header; after the tap the session is the upstream one, which logs the same rip', async () => {
    const client = imapClient(v2.port, 'alice', pw('alice'));
    const connecting = client.connect();
    const req = await waitForRequest(m.portal, tokens.alice!);
    assert.equal(req.clientIp, CLIENT_IP);
    assert.equal(req.protocol, 'imap');
    assert.deepEqual(await decide(m.portal, tokens.alice!, req.id, 'approve'), { status: 200, json: { status: 'approved' } });
    await connecting;
    const box = await client.mailboxOpen('INBOX');
    assert.equal(box.exists, 0);
    await client.logout();

    const login = await dovecot.waitForLog(/Login: user=<alice>/);
    assert.match(login, new RegExp(`rip=${CLIENT_IP.replace(/\./g, '\\.')}[,\\s]`));
    assert.match(login, new RegExp(`lip=${BALANCER_VIP.replace(/\./g, '\\.')}[,\\s]`));
    const conn = m.events().find((e) => e.msg === 'connection' && e.clientIp === CLIENT_IP);
    assert.equal(conn?.proxiedBy, '127.0.0.1', 'the balancer itself is still named in the log');
    assert.equal(conn?.proxyVersion, 2);
  });

  it("lets Python's imaplib in through a v1 header, and the approval is bound to the header's address", async () => {
    const run = python(PY_IMAP_LOGIN, ['127.0.0.1', String(v1.port), testCerts().caFile, 'bob', pw('bob'), '127.0.0.1']);
    const req = await waitForRequest(m.portal, tokens.bob!);
    assert.equal(req.clientIp, CLIENT_IP);
    await decide(m.portal, tokens.bob!, req.id, 'approve');
    const out = await run;
    assert.equal(out.code, 0, out.stderr);
    assert.match(out.stdout, /^LOGIN OK /m);

    // Same claimed client, other header version: inside the approval window, no new request.
    const again = imapClient(v2.port, 'bob', pw('bob'));
    await again.connect();
    await again.logout();
    assert.deepEqual((await deviceApi(m.portal, tokens.bob!, 'GET', '/api/v1/device/requests')).json, { requests: [] });
  });

  it('the listener without proxyProtocol is unchanged: the TCP peer is the client, and a header there is not believed', async () => {
    const client = imapClient(m.direct, 'alice', pw('alice'), { localAddress: '127.0.0.5' });
    const connecting = client.connect().then(
      () => 'ok',
      (e: { serverResponseCode?: string }) => e.serverResponseCode ?? 'error',
    );
    const req = await waitForRequest(m.portal, tokens.alice!, (r) => r.clientIp === '127.0.0.5');
    await decide(m.portal, tokens.alice!, req.id, 'deny');
    assert.equal(await connecting, 'AUTHENTICATIONFAILED');
    client.close();

    // A spoofed header in front of a plain TLS port is garbage to the handshake, not a client address.
    const spoof = imapClient(toDirect.port, 'alice', pw('alice'));
    await assert.rejects(spoof.connect());
    spoof.close();
  });

  it('closes a connection without a header, without a word', async () => {
    const seen = m.events().length;
    // A TLS client straight in: its ClientHello is not a PROXY header.
    await assert.rejects(
      new Promise((resolve, reject) => {
        const s = tls.connect({ host: '127.0.0.1', port: m.proxied, ca: testCerts().ca, servername: 'localhost' }, () => resolve(s));
        s.once('error', reject);
      }),
    );
    // A client speaking IMAP first: not one byte back.
    const plain = net.connect(m.proxied, '127.0.0.1', () => plain.write('a1 LOGIN alice alice-pass-1\r\n'));
    assert.equal((await closedWithoutReply(plain)).length, 0);
    await new Promise((r) => setTimeout(r, 100));
    const refused = m.events().slice(seen).filter((e) => e.msg === 'PROXY header refused; connection closed');
    assert.equal(refused.length, 2);
    assert.ok(refused.every((e) => e.level === 20 && e.peerIp === '127.0.0.1'));
    assert.deepEqual((await deviceApi(m.portal, tokens.alice!, 'GET', '/api/v1/device/requests')).json, { requests: [] });
  });
});
