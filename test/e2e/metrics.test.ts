import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import tls from 'node:tls';
import { testCerts } from '../helpers/certs.js';
import { startDovecot, type DovecotHandle } from '../helpers/dovecot.js';
import { startRedisServer, type RedisServerHandle } from '../helpers/redis-server.js';
import { decide, enrol, imapClient, startMailotp, waitForRequest, type MailotpProcess } from './harness.js';
import { curlPop3 } from './pop3-kit.js';
import { mailer } from './smtp-kit.js';
import { httpGet, metricsAddress, readyzUntil, scrape, scrapeUntil, type Scrape } from './metrics-kit.js';

type LoginError = { serverResponseCode?: string; authenticationFailed?: boolean } | null;

/** An implicit-TLS connection from `src` that has read its first line (greeting or refusal). */
function firstLine(port: number, src: string): Promise<{ socket: tls.TLSSocket; line: string }> {
  return new Promise((resolve, reject) => {
    const raw = net.connect({ host: '127.0.0.1', port, localAddress: src });
    const socket = tls.connect({ socket: raw, ca: testCerts().ca, servername: 'localhost' });
    socket.once('error', reject);
    socket.once('data', (d: Buffer) => resolve({ socket, line: d.toString('latin1') }));
  });
}

/** Connects and expects a refusal; returns the error imapflow gave. */
async function refused(connect: Promise<unknown>): Promise<NonNullable<LoginError>> {
  const err = (await connect.then(
    () => null,
    (e: unknown) => e,
  )) as LoginError;
  assert.ok(err, 'the login must be refused');
  return err;
}

describe('metrics listener: /metrics, /healthz, /readyz (real binary, Dovecot, imapflow, Redis)', () => {
  let dovecot: DovecotHandle;
  let redis: RedisServerHandle;
  /** SQLite store, metrics on the default host. */
  let m: MailotpProcess;
  /** Its own Redis, metrics on another loopback address. */
  let r: MailotpProcess;
  let token: string;

  before(async () => {
    [dovecot, redis] = await Promise.all([startDovecot(), startRedisServer()]);
    [m, r] = await Promise.all([
      startMailotp({ dovecot, metrics: { port: 0 } }),
      startMailotp({ dovecot, store: { driver: 'redis', url: redis.url, keyPrefix: `metrics${process.pid}:` }, metrics: { host: '127.0.0.2', port: 0 }, limits: { maxConnectionsPerIp: 2 } }),
    ]);
    token = await enrol(m, 'alice');
  });
  after(async () => {
    await Promise.all([m?.stop(), r?.stop()]);
    await Promise.all([redis?.stop(), dovecot?.stop()]);
  });

  it('listens where metrics.host says, loopback by default, and nowhere else', async () => {
    const own = metricsAddress(m);
    assert.equal(own.host, '127.0.0.1');
    assert.equal((await httpGet('127.0.0.1', own.port, '/healthz')).status, 200);
    await assert.rejects(httpGet('127.0.0.2', own.port, '/healthz'), /ECONNREFUSED/);

    const other = metricsAddress(r);
    assert.equal(other.host, '127.0.0.2');
    assert.equal((await httpGet('127.0.0.2', other.port, '/healthz')).status, 200);
    await assert.rejects(httpGet('127.0.0.1', other.port, '/healthz'), /ECONNREFUSED/);

    const missing = await httpGet('127.0.0.1', own.port, '/nothing');
    assert.equal(missing.status, 404);
  });

  it('counts a wrong password, a held login approved on the phone and one denied, as an operator reads them', async () => {
    const { host, port } = metricsAddress(m);
    const before = await scrape(host, port);
    const delta = (now: Scrape, name: string, labels: Record<string, string>) => now.sample(name, labels) - before.sample(name, labels);

    const bad = await refused(imapClient(m.imaps, 'alice', 'not-the-password', { localAddress: '127.0.0.4' }).connect());
    assert.equal(bad.serverResponseCode, 'AUTHENTICATIONFAILED');

    const client = imapClient(m.imaps, 'alice', 'alice-pass-1', { localAddress: '127.0.0.2' });
    const connecting = client.connect();
    const req = await waitForRequest(m.portal, token);
    await scrapeUntil(host, port, (s) => s.sample('mailotp_connections', { protocol: 'imap', state: 'held' }) === 1, 'one held IMAP login');
    assert.equal((await decide(m.portal, token, req.id, 'approve')).status, 200);
    await connecting;
    const loggedIn = await scrapeUntil(
      host,
      port,
      (s) => delta(s, 'mailotp_approval_to_login_seconds_count', { protocol: 'imap' }) === 1,
      'the tap-to-OK time of the approved login',
    );
    assert.equal(loggedIn.sample('mailotp_connections', { protocol: 'imap', state: 'spliced' }), 1, 'the logged-in session is spliced');
    assert.equal(loggedIn.sample('mailotp_connections', { protocol: 'imap', state: 'held' }), 0, 'and no longer held');
    await client.logout();

    const deniedClient = imapClient(m.imaps, 'alice', 'alice-pass-1', { localAddress: '127.0.0.3' });
    const denying = refused(deniedClient.connect());
    const second = await waitForRequest(m.portal, token, (x) => x.id !== req.id);
    assert.equal((await decide(m.portal, token, second.id, 'deny')).status, 200);
    assert.equal((await denying).serverResponseCode, 'AUTHENTICATIONFAILED');

    const now = await scrapeUntil(
      host,
      port,
      (s) =>
        s.sample('mailotp_connections', { protocol: 'imap', state: 'spliced' }) === 0 &&
        s.sample('mailotp_connections', { protocol: 'imap', state: 'pre-login' }) === 0 &&
        delta(s, 'mailotp_logins_total', { protocol: 'imap', result: 'denied' }) === 1,
      'every connection closed and the denial counted',
    );
    const expect = (name: string, labels: Record<string, string>, n: number) => assert.equal(delta(now, name, labels), n, `${name} ${JSON.stringify(labels)}`);
    expect('mailotp_logins_total', { protocol: 'imap', result: 'bad-password' }, 1);
    expect('mailotp_logins_total', { protocol: 'imap', result: 'approved' }, 1);
    expect('mailotp_holds_total', { protocol: 'imap', outcome: 'approved' }, 1);
    expect('mailotp_holds_total', { protocol: 'imap', outcome: 'denied' }, 1);
    expect('mailotp_connections_accepted_total', { protocol: 'imap' }, 3);
    expect('mailotp_requests_opened_total', { type: 'connection' }, 2);
    expect('mailotp_request_outcomes_total', { type: 'connection', outcome: 'approved' }, 1);
    expect('mailotp_request_outcomes_total', { type: 'connection', outcome: 'denied' }, 1);
    expect('mailotp_request_decision_seconds_count', { type: 'connection', outcome: 'approved' }, 1);
    expect('mailotp_request_decision_seconds_count', { type: 'connection', outcome: 'denied' }, 1);
    expect('mailotp_upstream_login_seconds_count', { protocol: 'imap', result: 'ok' }, 2);
    expect('mailotp_upstream_login_seconds_count', { protocol: 'imap', result: 'bad-password' }, 1);
    expect('mailotp_push_sends_total', { channel: 'log', event: 'opened', result: 'sent' }, 2);
    expect('mailotp_store_operation_seconds_count', { op: 'createRequest' }, 2);
    expect('mailotp_store_errors_total', {}, 0);
    assert.ok(delta(now, 'mailotp_upstream_connect_seconds_count', { protocol: 'imap', result: 'ok' }) >= 3, 'one upstream connection per login at least');
    assert.ok(now.sample('mailotp_process_resident_memory_bytes') > 0, 'the default process metrics are there');
    // Labels are fixed sets: no user name, no client address.
    assert.ok(!/alice|127\.0\.0\.[234]/.test(now.text), 'no user name or client IP in the metrics');
  });

  it('labels POP3 and SMTP logins by protocol, and counts connections refused by a cap', async () => {
    const { host, port } = metricsAddress(r);
    const before = await scrape(host, port);
    const delta = (now: Scrape, name: string, labels: Record<string, string>) => now.sample(name, labels) - before.sample(name, labels);

    const pop = await curlPop3(r.pop3s, 'bob', 'not-the-password');
    assert.notEqual(pop.code, 0, 'curl sees the refusal');
    assert.equal(await mailer(r.smtps, true, 'bob', 'bob-pass-2').verify(), true, 'bob has no two-factor: straight in');

    const first = await firstLine(r.imaps, '127.0.0.5');
    const second = await firstLine(r.imaps, '127.0.0.5');
    const third = await firstLine(r.imaps, '127.0.0.5');
    assert.match(third.line, /^\* BYE \[UNAVAILABLE\]/, 'the third from one address is past maxConnectionsPerIp');
    for (const c of [first, second, third]) c.socket.destroy();

    // At least one: an SMTP session that finds its upstream session gone before answering logs in
    // again (smtp-session's retry), and each answer of the core is counted.
    const now = await scrapeUntil(host, port, (s) => delta(s, 'mailotp_logins_total', { protocol: 'smtp', result: 'approved' }) >= 1, 'the SMTP login');
    assert.equal(delta(now, 'mailotp_logins_total', { protocol: 'pop3', result: 'bad-password' }), 1);
    assert.equal(delta(now, 'mailotp_upstream_login_seconds_count', { protocol: 'pop3', result: 'bad-password' }), 1);
    assert.ok(delta(now, 'mailotp_upstream_login_seconds_count', { protocol: 'smtp', result: 'ok' }) >= 1);
    assert.equal(delta(now, 'mailotp_connections_accepted_total', { protocol: 'smtp' }), 1);
    assert.equal(delta(now, 'mailotp_holds_total', {}), 0, 'nothing was held');
    assert.equal(delta(now, 'mailotp_connections_refused_total', { protocol: 'imap', cap: 'maxConnectionsPerIp' }), 1);
    assert.equal(delta(now, 'mailotp_connections_accepted_total', { protocol: 'imap' }), 2);
  });

  it('/readyz answers 200 while the store and every upstream answer', async () => {
    const { host, port } = metricsAddress(m);
    const ready = await httpGet(host, port, '/readyz');
    assert.equal(ready.status, 200);
    assert.deepEqual(JSON.parse(ready.body), { status: 'ready' });
    assert.equal((await httpGet(host, port, '/healthz')).status, 200);
  });

  it('/readyz is 503 naming the store while Redis is down, and 200 again once it is back', async () => {
    const { host, port } = metricsAddress(r);
    await readyzUntil(host, port, 200);
    await redis.stop();
    const down = await readyzUntil(host, port, 503);
    assert.deepEqual(JSON.parse(down.body), { status: 'not ready', failed: ['store'] });
    assert.equal((await httpGet(host, port, '/healthz')).status, 200, 'alive all the same');
    const s = await scrape(host, port);
    assert.ok(s.sample('mailotp_store_errors_total', { op: 'ping' }) >= 1, 'the failed round trip is a store error');
    await redis.restart();
    const back = await readyzUntil(host, port, 200);
    assert.deepEqual(JSON.parse(back.body), { status: 'ready' });
  });

  it('/readyz is 503 naming the upstreams when the mail server is down', async () => {
    const { host, port } = metricsAddress(m);
    await dovecot.stop();
    // Dovecot's listeners close one after another: the first 503 may name only some of them.
    const all = ['upstream.imap', 'upstream.pop3', 'upstream.smtp'];
    const down = await readyzUntil(host, port, 503, (text) => all.every((u) => text.includes(`"${u}"`)));
    assert.deepEqual(JSON.parse(down.body), { status: 'not ready', failed: all });
  });
});
