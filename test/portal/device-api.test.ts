import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { X509Certificate } from 'node:crypto';
import { copyFileSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import tls from 'node:tls';
import { Writable } from 'node:stream';
import { after, before, describe, test } from 'node:test';
import { promisify } from 'node:util';
import type { DeviceRecord, RequestRecord } from '../../src/core/types.js';
import { createLogger, silentLogger } from '../../src/log/logger.js';
import { TlsContextProvider } from '../../src/net/tls-context.js';
import { PortalServer } from '../../src/portal/portal-server.js';
import { selfSignedCert } from '../helpers/certs.js';
import { bind, call, fixture, flakyStore, iso, open, REQUEST_TTL_MS, SseClient, waitFor, type Fixture, type Target } from './portal-kit.js';
import { coreFixture } from '../core/core-fixture.js';

const run = promisify(execFile);

// ---- over HTTPS ------------------------------------------------------------------------------

describe('device API over HTTPS', () => {
  let dir: string;
  let f: Fixture;
  let portal: PortalServer;
  let provider: TlsContextProvider;
  let target: Target;
  let caFile: string;
  let alice: { device: DeviceRecord; token: string };
  let bob: { device: DeviceRecord; token: string };

  before(async () => {
    dir = mkdtempSync(path.join(os.tmpdir(), 'mailotp-portal-'));
    selfSignedCert(dir, 'first', 'localhost');
    selfSignedCert(dir, 'second', 'localhost');
    copyFileSync(path.join(dir, 'first.crt'), path.join(dir, 'server.crt'));
    copyFileSync(path.join(dir, 'first.key'), path.join(dir, 'server.key'));
    caFile = path.join(dir, 'first.crt');
    f = fixture();
    provider = new TlsContextProvider({ cert: path.join(dir, 'server.crt'), key: path.join(dir, 'server.key') });
    portal = new PortalServer({
      settings: { host: '127.0.0.1', port: 0, tls: true, enabled: true },
      tls: provider,
      devices: f.devices,
      requests: f.requests,
      approvals: f.approvals,
      ping: () => f.store.ping(),
      logger: silentLogger(),
      heartbeatMs: 50,
    });
    const { port } = await portal.listen();
    target = { port, ca: [readFileSync(path.join(dir, 'first.crt')), readFileSync(path.join(dir, 'second.crt'))] };
    alice = await bind(f, 'alice');
    bob = await bind(f, 'bob');
  });

  after(async () => {
    await portal?.close();
    await f?.store.close();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  test('GET /healthz answers ok', async () => {
    const r = await call(target, 'GET', '/healthz');
    assert.equal(r.status, 200);
    assert.deepEqual(r.json, { status: 'ok' });
  });

  test('401 without a token, with a bad token, and with the token of a removed device', async () => {
    const carol = await bind(f, 'carol');
    assert.equal((await call(target, 'GET', '/api/v1/device/requests', { token: carol.token })).status, 200);
    await f.devices.remove('carol');
    const forged = `${alice.device.deviceId}.${'A'.repeat(43)}`;
    for (const token of [undefined, 'nonsense', forged, carol.token]) {
      const r = await call(target, 'GET', '/api/v1/device/requests', token === undefined ? {} : { token });
      assert.equal(r.status, 401, `token ${String(token)}`);
      assert.deepEqual(r.json, { error: 'unauthorized' });
      assert.match(String(r.headers['www-authenticate']), /^Bearer/);
    }
    const basic = await call(target, 'GET', '/api/v1/device/requests', { headers: { authorization: 'Basic YWxpY2U6eA==' } });
    assert.equal(basic.status, 401);
  });

  test('lists the pending requests of the token\'s device only', async () => {
    const mine = await open(f, alice.device, '10.0.0.1', 'Thunderbird');
    await open(f, bob.device, '10.9.0.1');
    const r = await call(target, 'GET', '/api/v1/device/requests', { token: alice.token });
    assert.equal(r.status, 200);
    assert.equal(r.headers['cache-control'], 'no-store');
    assert.deepEqual(r.json, {
      requests: [
        {
          id: mine.id,
          type: 'connection',
          user: 'alice',
          protocol: 'imap',
          clientIp: '10.0.0.1',
          clientName: 'Thunderbird',
          createdAt: iso(mine.createdAt),
          expiresAt: iso(mine.createdAt + REQUEST_TTL_MS),
        },
      ],
    });
  });

  test('approve with curl gives 200 and an approval; a second answer is 409', async () => {
    const req = await open(f, alice.device, '10.0.0.2');
    const { stdout } = await run('curl', [
      '-sS', '--cacert', caFile, '-X', 'POST',
      '-H', `Authorization: Bearer ${alice.token}`,
      '-H', 'Content-Type: application/json',
      '--data-binary', '{"decision":"approve"}',
      '-w', '\n%{http_code}',
      `https://127.0.0.1:${target.port}/api/v1/device/requests/${req.id}`,
    ]);
    const [body, code] = stdout.split('\n');
    assert.equal(code, '200');
    assert.deepEqual(JSON.parse(body ?? ''), { status: 'approved' });
    const approval = await f.approvals.find('alice', '10.0.0.2');
    assert.ok(approval);
    assert.equal(approval.requestId, req.id);

    const again = await call(target, 'POST', `/api/v1/device/requests/${req.id}`, { token: alice.token, body: { decision: 'deny' } });
    assert.equal(again.status, 409);
    assert.deepEqual(again.json, { error: 'already-decided', status: 'approved' });
  });

  test('deny gives 200 denied and no approval', async () => {
    const req = await open(f, alice.device, '10.0.0.3');
    const r = await call(target, 'POST', `/api/v1/device/requests/${req.id}`, { token: alice.token, body: { decision: 'deny' } });
    assert.equal(r.status, 200);
    assert.deepEqual(r.json, { status: 'denied' });
    assert.equal(await f.approvals.find('alice', '10.0.0.3'), null);
    assert.equal((await f.store.getRequest(req.id, f.clock.now()))?.status, 'denied');
  });

  test('report ("this wasn\'t me") gives 200 denied, cools the address down, and the stream hears settled then reported', async () => {
    const erin = await bind(f, 'erin');
    const sse = await SseClient.open(target, erin.token);
    const hostile = 'Mail\u202e\u2066lppA\u0007\u200b' + 'y'.repeat(100);
    const req = await open(f, erin.device, '10.0.0.9', hostile);
    const shown = await waitFor('the request', () => sse.events.find((e) => e.event === 'request'));
    const cleaned = ('MaillppA' + 'y'.repeat(100)).slice(0, 64);
    assert.equal((JSON.parse(shown.data) as { clientName: string }).clientName, cleaned);
    const listed = await call(target, 'GET', '/api/v1/device/requests', { token: erin.token });
    assert.equal((listed.json as { requests: { clientName: string }[] }).requests[0]?.clientName, cleaned);

    const r = await call(target, 'POST', `/api/v1/device/requests/${req.id}`, { token: erin.token, body: { decision: 'report' } });
    assert.equal(r.status, 200);
    assert.deepEqual(r.json, { status: 'denied' });
    assert.equal((await f.store.getRequest(req.id, f.clock.now()))?.status, 'denied');
    const reported = await waitFor('the reported event', () => sse.events.find((e) => e.event === 'reported'));
    const settled = sse.events.find((e) => e.event === 'settled');
    assert.deepEqual(JSON.parse(settled?.data ?? ''), { id: req.id, status: 'denied' });
    assert.deepEqual(JSON.parse(reported.data), { id: req.id, status: 'denied' });
    assert.equal(sse.events.indexOf(settled!) < sse.events.indexOf(reported), true);
    sse.close();
    const again = await call(target, 'POST', `/api/v1/device/requests/${req.id}`, { token: erin.token, body: { decision: 'report' } });
    assert.equal(again.status, 409);
  });

  test('404 for another device\'s request, an unknown id, a malformed id and an expired request', async () => {
    const bobs = await open(f, bob.device, '10.9.0.4');
    const r = await call(target, 'POST', `/api/v1/device/requests/${bobs.id}`, { token: alice.token, body: { decision: 'approve' } });
    assert.equal(r.status, 404);
    assert.deepEqual(r.json, { error: 'not-found' });
    assert.equal((await f.store.getRequest(bobs.id, f.clock.now()))?.status, 'pending');
    assert.equal(await f.approvals.find('bob', '10.9.0.4'), null);

    for (const id of ['AAAAAAAAAAAAAAAAAAAAAA', 'not%20an%20id', 'x'.repeat(100)]) {
      const u = await call(target, 'POST', `/api/v1/device/requests/${id}`, { token: alice.token, body: { decision: 'approve' } });
      assert.equal(u.status, 404, id);
    }
    const long = await call(target, 'POST', `/api/v1/device/requests/${'x'.repeat(101)}`, { token: alice.token, body: { decision: 'approve' } });
    assert.equal(long.status, 414);
    assert.deepEqual(long.json, { error: 'uri-too-long' });

    const old = await open(f, alice.device, '10.0.0.4');
    f.clock.advance(REQUEST_TTL_MS + 1);
    const e = await call(target, 'POST', `/api/v1/device/requests/${old.id}`, { token: alice.token, body: { decision: 'approve' } });
    assert.equal(e.status, 404);
    assert.equal(await f.approvals.find('alice', '10.0.0.4'), null);
  });

  test('400 for bad bodies, 413 for a huge one, JSON errors without stack traces', async () => {
    const req = await open(f, alice.device, '10.0.0.5');
    const url = `/api/v1/device/requests/${req.id}`;
    const bad: Array<{ raw?: string; body?: unknown; headers?: Record<string, string> }> = [
      { body: { decision: 'maybe' } },
      { body: {} },
      { body: { decision: 'approve', number: '5' } },
      { body: { decision: 'approve', number: 1.5 } },
      { body: ['approve'] },
      { raw: '{"decision":', headers: { 'content-type': 'application/json' } },
      { raw: '', headers: { 'content-type': 'application/json' } },
    ];
    for (const b of bad) {
      const r = await call(target, 'POST', url, { token: alice.token, ...b });
      assert.equal(r.status, 400, JSON.stringify(b));
      const json = r.json as { error?: unknown };
      assert.equal(json.error, 'bad-request');
      assert.doesNotMatch(r.text, /at .*\.js:\d+/);
    }
    const noType = await call(target, 'POST', url, { token: alice.token, raw: '{"decision":"approve"}', headers: { 'content-type': 'application/xml' } });
    assert.equal(noType.status, 415);
    assert.deepEqual(noType.json, { error: 'unsupported-media-type' });
    const huge = await call(target, 'POST', url, { token: alice.token, body: { decision: 'approve', pad: 'x'.repeat(20_000) } });
    assert.equal(huge.status, 413);
    assert.deepEqual(huge.json, { error: 'payload-too-large' });
    assert.equal((await f.store.getRequest(req.id, f.clock.now()))?.status, 'pending');

    const nowhere = await call(target, 'GET', '/api/v1/nothing-here', { token: alice.token });
    assert.equal(nowhere.status, 404);
    assert.deepEqual(nowhere.json, { error: 'not-found' });
  });

  test('a number-matching sign-in shows its choices, refuses an approval without a number and is denied by a wrong one', async () => {
    const now = f.clock.now();
    const record: RequestRecord = {
      id: 'numbermatching0000000A',
      type: 'login',
      user: 'alice',
      deviceId: alice.device.deviceId,
      protocol: 'web',
      clientIp: '10.0.0.6',
      createdAt: now,
      expiresAt: now + REQUEST_TTL_MS,
      status: 'pending',
      choices: [12, 47, 83],
      matchNumber: 47,
    };
    await f.store.createRequest(record, now);
    const list = await call(target, 'GET', '/api/v1/device/requests', { token: alice.token });
    const shown = (list.json as { requests: Array<{ id: string; choices?: number[]; clientName: unknown }> }).requests.find((r) => r.id === record.id);
    assert.deepEqual(shown?.choices, [12, 47, 83]);
    assert.equal(shown?.clientName, null);
    const r = await call(target, 'POST', `/api/v1/device/requests/${record.id}`, { token: alice.token, body: { decision: 'approve' } });
    assert.equal(r.status, 422);
    assert.deepEqual(r.json, { error: 'wrong-number' });
    assert.ok(!JSON.stringify(list.json).includes('matchNumber'), 'the number to pick is never sent to the device');
    const right = await call(target, 'POST', `/api/v1/device/requests/${record.id}`, { token: alice.token, body: { decision: 'approve', number: 47 } });
    assert.deepEqual(right.json, { status: 'approved' });

    const second: RequestRecord = { ...record, id: 'numbermatching0000000B', clientIp: '10.0.0.7' };
    await f.store.createRequest(second, now);
    const wrong = await call(target, 'POST', `/api/v1/device/requests/${second.id}`, { token: alice.token, body: { decision: 'approve', number: 12 } });
    assert.deepEqual([wrong.status, wrong.json], [200, { status: 'denied' }]);
    const stored = await f.store.getRequest(second.id, f.clock.now());
    assert.equal(stored?.status, 'denied');
  });

  test('PUT push-token stores the token; bad ones are 400', async () => {
    const r = await call(target, 'PUT', '/api/v1/device/push-token', { token: alice.token, body: { token: 'fcm:abc-123_XYZ', platform: 'android' } });
    assert.equal(r.status, 200);
    assert.deepEqual(r.json, { status: 'ok' });
    const stored = await f.store.getDevice(alice.device.deviceId);
    assert.equal(stored?.pushToken, 'fcm:abc-123_XYZ');
    assert.equal(stored?.pushPlatform, 'android');

    for (const body of [{ token: '', platform: 'ios' }, { token: 'x', platform: 'windows' }, { token: 'x'.repeat(4097), platform: 'ios' }, { platform: 'ios' }, { token: 'a b', platform: 'ios' }]) {
      const bad = await call(target, 'PUT', '/api/v1/device/push-token', { token: alice.token, body });
      assert.equal(bad.status, 400, JSON.stringify(body).slice(0, 80));
    }
    assert.equal((await call(target, 'PUT', '/api/v1/device/push-token', { body: { token: 'x', platform: 'ios' } })).status, 401);
  });

  test('events: pending first, then opened and settled requests, heartbeats, and cleanup on disconnect', async () => {
    const dave = await bind(f, 'dave');
    const before = await open(f, dave.device, '10.1.0.1', 'Outlook');
    const baseline = f.subscriptions();
    const head = await f.store.lastEventId();

    const sse = await SseClient.open(target, dave.token);
    assert.equal(sse.res.statusCode, 200);
    assert.match(String(sse.res.headers['content-type']), /^text\/event-stream/);
    await waitFor('the pending request', () => sse.events.length >= 1);
    assert.equal(sse.retry !== undefined && sse.retry > 0, true);
    assert.equal(f.subscriptions(), baseline + 1);
    // The pending list carries the log position it was read at, so a reconnect continues from there.
    const first = sse.events[0];
    assert.ok(first && Number(first.id) >= head);
    assert.deepEqual(first, {
      id: first.id,
      event: 'request',
      data: JSON.stringify({
        id: before.id,
        type: 'connection',
        user: 'dave',
        protocol: 'imap',
        clientIp: '10.1.0.1',
        clientName: 'Outlook',
        createdAt: iso(before.createdAt),
        expiresAt: iso(before.expiresAt),
      }),
    });

    // Another device's request never shows up on this stream.
    await open(f, bob.device, '10.9.1.1');
    const fresh = await open(f, dave.device, '10.1.0.2');
    const opened = await waitFor('the new request', () => sse.events.find((e) => e.data.includes(fresh.id)));
    assert.equal(opened.event, 'request');
    assert.ok(Number(opened.id) > head);
    assert.deepEqual(JSON.parse(opened.data), {
      id: fresh.id,
      type: 'connection',
      user: 'dave',
      protocol: 'imap',
      clientIp: '10.1.0.2',
      clientName: null,
      createdAt: iso(fresh.createdAt),
      expiresAt: iso(fresh.expiresAt),
    });

    const decided = await call(target, 'POST', `/api/v1/device/requests/${fresh.id}`, { token: dave.token, body: { decision: 'approve' } });
    assert.equal(decided.status, 200);
    const settled = await waitFor('the settled event', () => sse.events.find((e) => e.event === 'settled'));
    assert.ok(Number(settled.id) > Number(opened.id));
    assert.deepEqual(JSON.parse(settled.data), { id: fresh.id, status: 'approved' });
    assert.equal(sse.events.length, 3, 'nothing of bob\'s arrived');

    await waitFor('a heartbeat', () => sse.comments.includes('heartbeat'));

    sse.close();
    await waitFor('the subscription to go', () => f.subscriptions() === baseline);
  });

  test('events: 401 without a token', async () => {
    const sse = await SseClient.open(target, undefined);
    assert.equal(sse.res.statusCode, 401);
    await waitFor('the end', () => sse.ended);
  });

  test('reloadTls serves the new certificate to new connections', async () => {
    const fingerprint = (): Promise<string> =>
      new Promise((resolve, reject) => {
        // No servername: an IP client sends no SNI, which is the case the server's default context serves.
        const s = tls.connect({ host: '127.0.0.1', port: target.port, ca: target.ca }, () => {
          resolve(s.getPeerCertificate().fingerprint256);
          s.destroy();
        });
        s.on('error', reject);
      });
    const fp = (file: string): string => new X509Certificate(readFileSync(path.join(dir, file))).fingerprint256;
    assert.equal(await fingerprint(), fp('first.crt'));
    copyFileSync(path.join(dir, 'second.crt'), path.join(dir, 'server.crt'));
    copyFileSync(path.join(dir, 'second.key'), path.join(dir, 'server.key'));
    provider.reload();
    portal.reloadTls();
    assert.equal(await fingerprint(), fp('second.crt'));
    assert.equal((await call(target, 'GET', '/healthz')).status, 200);
  });

  test('TLS below 1.2 is refused', async () => {
    await assert.rejects(
      new Promise((resolve, reject) => {
        const s = tls.connect({ host: '127.0.0.1', port: target.port, ca: target.ca, minVersion: 'TLSv1', maxVersion: 'TLSv1.1' }, () => {
          s.destroy();
          resolve(undefined);
        });
        s.on('error', reject);
      }),
    );
  });
});

// ---- over plain HTTP: failures, limits, shutdown --------------------------------------------

describe('device API failure handling', () => {
  let f: Fixture;
  let failing: Set<string>;
  let portal: PortalServer;
  let target: Target;
  let erin: { device: DeviceRecord; token: string };
  const logLines: string[] = [];

  before(async () => {
    f = fixture();
    failing = new Set();
    const store = flakyStore(f.store, failing);
    const destination = new Writable({
      write(chunk: Buffer, _enc, done) {
        logLines.push(chunk.toString('utf8'));
        done();
      },
    });
    const logger = createLogger({ level: 'debug', destination, pretty: false });
    // Devices and requests over the failing store; the approvals stay on the good one.
    const { devices, requests } = coreFixture({ store, clock: f.clock, logger });
    portal = new PortalServer({
      settings: { host: '127.0.0.1', port: 0, tls: false, enabled: true },
      tls: null,
      devices,
      requests,
      approvals: f.approvals,
      ping: () => store.ping(),
      logger,
      heartbeatMs: 50,
      clock: f.clock,
    });
    target = { port: (await portal.listen()).port };
    erin = await bind(f, 'erin');
  });

  after(async () => {
    await portal?.close();
    await f?.store.close();
  });

  test('a store outage is 503, never 200', async () => {
    failing.add('getDevice');
    const auth = await call(target, 'GET', '/api/v1/device/requests', { token: erin.token });
    assert.equal(auth.status, 503);
    assert.deepEqual(auth.json, { error: 'unavailable' });
    failing.clear();

    failing.add('listPendingRequests');
    const list = await call(target, 'GET', '/api/v1/device/requests', { token: erin.token });
    assert.equal(list.status, 503);
    assert.deepEqual(list.json, { error: 'unavailable' });
    const sse = await SseClient.open(target, erin.token);
    assert.equal(sse.res.statusCode, 503);
    await waitFor('the end', () => sse.ended);
    failing.clear();

    const req = await open(f, erin.device, '10.2.0.1');
    failing.add('getRequest');
    const decide = await call(target, 'POST', `/api/v1/device/requests/${req.id}`, { token: erin.token, body: { decision: 'approve' } });
    assert.equal(decide.status, 503);
    failing.clear();

    failing.add('ping');
    const health = await call(target, 'GET', '/healthz');
    assert.equal(health.status, 503);
    assert.deepEqual(health.json, { status: 'unavailable' });
    failing.clear();
    assert.equal((await call(target, 'GET', '/healthz')).status, 200);
  });

  test('close() ends open event streams instead of waiting for them', async () => {
    const baseline = f.subscriptions();
    const sse = await SseClient.open(target, erin.token);
    await waitFor('the stream to start', () => sse.retry !== undefined);
    assert.equal(f.subscriptions(), baseline + 1);
    const second = new PortalServer({
      settings: { host: '127.0.0.1', port: 0, tls: false, enabled: true },
      tls: null,
      devices: f.devices,
      requests: f.requests,
      approvals: f.approvals,
      ping: () => f.store.ping(),
      logger: silentLogger(),
    });
    const other = await SseClient.open({ port: (await second.listen()).port }, erin.token);
    await waitFor('the second stream to start', () => other.retry !== undefined);
    const started = Date.now();
    await second.close();
    assert.ok(Date.now() - started < 2000, 'close was not held by the stream');
    await waitFor('the client to see the end', () => other.ended);
    assert.equal(sse.ended, false, 'the other server\'s stream is untouched');
    sse.close();
    await waitFor('both subscriptions to go', () => f.subscriptions() === baseline);
  });

  test('a device keeps at most 4 streams: a fifth ends the oldest', async () => {
    const baseline = f.subscriptions();
    const clients: SseClient[] = [];
    for (let i = 0; i < 5; i++) {
      const c = await SseClient.open(target, erin.token);
      await waitFor(`stream ${i}`, () => c.retry !== undefined);
      clients.push(c);
    }
    await waitFor('the oldest to end', () => clients[0]?.ended);
    assert.deepEqual(clients.map((c) => c.ended), [true, false, false, false, false]);
    for (const c of clients) c.close();
    await waitFor('all subscriptions to go', () => f.subscriptions() === baseline);
  });

  test('too many failed tokens from one IP get 429; a valid token from that IP still passes', async () => {
    for (let i = 0; i < 20; i++) {
      const r = await call(target, 'GET', '/api/v1/device/requests', { token: `bad-${i}` });
      assert.equal(r.status, 401);
    }
    const limited = await call(target, 'GET', '/api/v1/device/requests', { token: 'bad-again' });
    assert.equal(limited.status, 429);
    assert.deepEqual(limited.json, { error: 'too-many-requests' });
    assert.ok(Number(limited.headers['retry-after']) > 0);
    assert.equal((await call(target, 'GET', '/api/v1/device/requests')).status, 429, 'no token at all is a failure too');
    // A phone behind the same NAT as the scanner.
    assert.equal((await call(target, 'GET', '/api/v1/device/requests', { token: erin.token })).status, 200);
    assert.equal((await call(target, 'GET', '/healthz')).status, 200, 'the limit is the device API\'s only');
    f.clock.advance(60_000);
    assert.equal((await call(target, 'GET', '/api/v1/device/requests', { token: 'bad-later' })).status, 401, 'a new minute starts over');
  });

  test('a store that cannot count a failure is 503, never 401 or 200', async () => {
    failing.add('hit');
    const r = await call(target, 'GET', '/api/v1/device/requests', { token: 'bad-while-down' });
    assert.equal(r.status, 503);
    failing.clear();
  });

  test('the log has the failures but no token', () => {
    const log = logLines.join('');
    assert.match(log, /"event":"device.auth-failed"/);
    assert.match(log, /"route":"\/api\/v1\/device\/requests"/);
    const secret = erin.token.slice(erin.token.indexOf('.') + 1);
    assert.equal(log.includes(secret), false);
    assert.equal(log.includes('bad-again'), false);
    assert.equal(/authorization/i.test(log), false);
  });
});
