import assert from 'node:assert/strict';
import { createHmac, timingSafeEqual } from 'node:crypto';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, beforeEach, describe, test } from 'node:test';
import type { DeviceRecord, RequestRecord } from '../../src/core/types.js';
import { FakeClock } from '../../src/core/clock.js';
import { silentLogger } from '../../src/log/logger.js';
import { SqliteStore } from '../../src/stores/sqlite-store.js';
import { signWebhook, WebhookNotifier } from '../../src/push/webhook-notifier.js';
import { coreFixture } from '../core/core-fixture.js';

const SECRET = 'a-webhook-secret-of-some-length';
const HOOK_PATH = '/hooks/s3cr3t-path';

interface Received {
  headers: http.IncomingHttpHeaders;
  method: string;
  url: string;
  body: string;
}

const request: RequestRecord = {
  id: 'req0000000000000000001',
  type: 'connection',
  user: 'alice',
  deviceId: '11111111-2222-3333-4444-555555555555',
  protocol: 'imap',
  clientIp: '198.51.100.7',
  clientName: 'Thunderbird',
  createdAt: Date.UTC(2026, 0, 1, 12),
  expiresAt: Date.UTC(2026, 0, 1, 12, 5),
  status: 'pending',
};

const device: DeviceRecord = {
  deviceId: request.deviceId,
  user: 'alice',
  name: 'Pixel',
  tokenHash: 'f'.repeat(64),
  createdAt: Date.UTC(2025, 11, 1),
  pushToken: 'fcm-push-token-value',
  pushPlatform: 'android',
};

/** Independent of signWebhook: what a receiver would write from the docs. */
function verify(secret: string, received: Received): boolean {
  const ts = String(received.headers['x-mailotp-timestamp']);
  const expected = Buffer.from('sha256=' + createHmac('sha256', secret).update(`${ts}.${received.body}`).digest('hex'));
  const got = Buffer.from(String(received.headers['x-mailotp-signature']));
  return got.length === expected.length && timingSafeEqual(got, expected);
}

async function waitUntil(cond: () => boolean): Promise<void> {
  const deadline = Date.now() + 5_000;
  while (!cond()) {
    assert.ok(Date.now() < deadline, 'timed out');
    await new Promise((r) => setTimeout(r, 10));
  }
}

describe('WebhookNotifier', () => {
  let server: http.Server;
  let url: string;
  let received: Received[];
  /** Status codes to answer with, in order; 0 = never answer. The last one repeats. */
  let script: number[];

  before(async () => {
    server = http.createServer((req, res) => {
      let body = '';
      req.setEncoding('utf8');
      req.on('data', (c: string) => (body += c));
      req.on('end', () => {
        received.push({ headers: req.headers, method: req.method ?? '', url: req.url ?? '', body });
        const status = script.length > 1 ? script.shift() : script[0];
        if (status === 0 || status === undefined) return; // hold the request until the client gives up
        if (status >= 300 && status < 400) res.setHeader('Location', 'http://127.0.0.1:9/elsewhere');
        res.writeHead(status, { 'content-type': 'text/plain' });
        res.end('answer body');
      });
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    url = `http://127.0.0.1:${(server.address() as AddressInfo).port}${HOOK_PATH}`;
  });

  beforeEach(() => {
    received = [];
    script = [200];
  });

  after(async () => {
    server.closeAllConnections();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  });

  const notifier = (opts: { retries?: number; backoffMs?: number; timeoutMs?: number; publicUrl?: string } = {}) =>
    new WebhookNotifier({ url, secret: SECRET, timeoutMs: opts.timeoutMs ?? 2000 }, silentLogger(), {
      retries: opts.retries ?? 3,
      backoffMs: opts.backoffMs ?? 10,
      ...(opts.publicUrl ? { publicUrl: opts.publicUrl } : {}),
    });

  test('POSTs a signed request.opened with the request, the device and the portal URL', async () => {
    const before = Date.now();
    await notifier({ publicUrl: 'https://mail.example.com:8443' }).requestOpened(request, device);
    assert.equal(received.length, 1);
    const r = received[0]!;
    assert.equal(r.method, 'POST');
    assert.equal(r.url, HOOK_PATH);
    assert.equal(r.headers['content-type'], 'application/json');
    assert.equal(r.headers['user-agent'], 'mailotp');
    const ts = Number(r.headers['x-mailotp-timestamp']);
    assert.ok(Number.isInteger(ts) && Math.abs(ts - before / 1000) < 5, `timestamp ${ts}`);
    assert.ok(verify(SECRET, r), 'signature verifies');
    assert.ok(!verify('another-secret-entirely-0000', r), 'and not with another secret');
    assert.equal(r.headers['x-mailotp-signature'], signWebhook(SECRET, ts, r.body));

    const body = JSON.parse(r.body) as Record<string, unknown>;
    assert.equal(typeof body.sentAt, 'string');
    assert.ok(!Number.isNaN(Date.parse(String(body.sentAt))));
    delete body.sentAt;
    assert.deepEqual(body, {
      event: 'request.opened',
      request: {
        id: request.id,
        type: 'connection',
        user: 'alice',
        protocol: 'imap',
        clientIp: '198.51.100.7',
        clientName: 'Thunderbird',
        createdAt: '2026-01-01T12:00:00.000Z',
        expiresAt: '2026-01-01T12:05:00.000Z',
      },
      device: { deviceId: device.deviceId, name: 'Pixel' },
      portalUrl: 'https://mail.example.com:8443',
    });
    assert.doesNotMatch(r.body, /fcm-push-token-value|ffffffff/);
  });

  test('request.settled carries the outcome, and the device may be gone', async () => {
    await notifier().requestSettled({ ...request, status: 'denied', decidedAt: request.createdAt + 1000 }, null);
    const body = JSON.parse(received[0]!.body) as Record<string, unknown>;
    assert.equal(body.event, 'request.settled');
    assert.equal(body.status, 'denied');
    assert.deepEqual(body.device, { deviceId: device.deviceId, name: null });
    assert.equal('portalUrl' in body, false);
    assert.ok(verify(SECRET, received[0]!));
  });

  test('through the core: the client name is cleaned, and a report is settled then reported', async () => {
    const store = new SqliteStore({ path: ':memory:' });
    const clock = new FakeClock(request.createdAt);
    try {
      const { requests } = coreFixture({ store, clock, notifiers: [notifier()] });
      await store.putDevice(device, false);
      const { request: opened } = await requests.openConnection({ user: 'alice', device, protocol: 'imap', clientIp: '198.51.100.8', clientName: '\u202eThunder\u0008bird\u2069' });
      await waitUntil(() => received.length === 1);
      assert.equal((JSON.parse(received[0]!.body) as { request: { clientName: string } }).request.clientName, 'Thunderbird');
      assert.equal((await requests.decide(device.deviceId, opened.id, 'report')).status, 'denied');
      await waitUntil(() => received.length === 3);
      const [settled, reported] = received.slice(1).map((r) => JSON.parse(r.body) as { event: string; status: string; request: { id: string } });
      assert.deepEqual([settled?.event, settled?.status], ['request.settled', 'denied']);
      assert.deepEqual([reported?.event, reported?.status, reported?.request.id], ['request.reported', 'denied', opened.id]);
      assert.ok(verify(SECRET, received[2]!));
    } finally {
      await store.close();
    }
  });

  test('an unanswered request is settled as expired, signed like the rest', async () => {
    await notifier({ publicUrl: 'https://mail.example.com:8443' }).requestSettled({ ...request, status: 'expired' }, device);
    const r = received[0]!;
    assert.ok(verify(SECRET, r), 'signature verifies');
    const body = JSON.parse(r.body) as Record<string, unknown>;
    delete body.sentAt;
    assert.deepEqual(body, {
      event: 'request.settled',
      request: {
        id: request.id,
        type: 'connection',
        user: 'alice',
        protocol: 'imap',
        clientIp: '198.51.100.7',
        clientName: 'Thunderbird',
        createdAt: '2026-01-01T12:00:00.000Z',
        expiresAt: '2026-01-01T12:05:00.000Z',
      },
      status: 'expired',
      device: { deviceId: device.deviceId, name: 'Pixel' },
      portalUrl: 'https://mail.example.com:8443',
    });
  });

  test('retries 5xx with backoff and delivers once; the delivery id stays the same', async () => {
    script = [500, 503, 200];
    const started = Date.now();
    await notifier({ backoffMs: 40 }).requestOpened(request, device);
    assert.equal(received.length, 3);
    assert.ok(Date.now() - started >= 40 + 80 - 5, 'waited 40 then 80 ms');
    const ids = new Set(received.map((r) => r.headers['x-mailotp-delivery']));
    assert.equal(ids.size, 1);
    assert.equal(new Set(received.map((r) => r.body)).size, 1, 'the same body every time');
    for (const r of received) assert.ok(verify(SECRET, r));
  });

  test('retries 429', async () => {
    script = [429, 200];
    await notifier().requestOpened(request, device);
    assert.equal(received.length, 2);
  });

  test('a 400 is final: no retry, and the error names neither the URL nor the secret', async () => {
    script = [400];
    const err = await notifier().requestOpened(request, device).then(
      () => assert.fail('should reject'),
      (e: unknown) => e as Error,
    );
    assert.equal(received.length, 1);
    assert.match(err.message, /400/);
    assert.doesNotMatch(err.message, /s3cr3t|a-webhook-secret/);
  });

  test('a redirect is not followed', async () => {
    script = [302];
    await assert.rejects(notifier().requestOpened(request, device), /302/);
    assert.equal(received.length, 1);
  });

  test('gives up after the configured retries', async () => {
    script = [500];
    await assert.rejects(notifier({ retries: 2 }).requestOpened(request, device), /3 attempt\(s\): HTTP 500/);
    assert.equal(received.length, 3);
  });

  test('a server that never answers: rejects after timeoutMs', async () => {
    script = [0];
    const started = Date.now();
    await assert.rejects(notifier({ retries: 0, timeoutMs: 150 }).requestOpened(request, device), /no answer within 150ms/);
    const took = Date.now() - started;
    assert.ok(took >= 140 && took < 1500, `took ${took} ms`);
    assert.equal(received.length, 1);
  });

  test('an unreachable receiver is retried, then reported', async () => {
    const closed = http.createServer();
    await new Promise<void>((resolve) => closed.listen(0, '127.0.0.1', resolve));
    const port = (closed.address() as AddressInfo).port;
    await new Promise<void>((resolve) => closed.close(() => resolve()));
    const n = new WebhookNotifier({ url: `http://127.0.0.1:${port}/x`, secret: SECRET, timeoutMs: 500 }, silentLogger(), { retries: 1, backoffMs: 5 });
    await assert.rejects(n.requestOpened(request, device), /2 attempt\(s\).*ECONNREFUSED/);
  });

  test('close() ends a delivery waiting for its next attempt', async () => {
    script = [500];
    const n = notifier({ backoffMs: 10_000 });
    const delivery = n.requestOpened(request, device);
    const started = Date.now();
    while (received.length === 0) await new Promise((r) => setTimeout(r, 5));
    await n.close();
    await assert.rejects(delivery, /closed/);
    assert.ok(Date.now() - started < 1000);
    assert.equal(received.length, 1);
  });

  test('signWebhook is HMAC-SHA256 over "timestamp.body"', () => {
    assert.equal(
      signWebhook('key', 1700000000, '{"a":1}'),
      'sha256=' + createHmac('sha256', 'key').update('1700000000.{"a":1}').digest('hex'),
    );
  });
});
