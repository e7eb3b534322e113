import assert from 'node:assert/strict';
import { createECDH } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import https from 'node:https';
import os from 'node:os';
import path from 'node:path';
import { after, before, beforeEach, describe, it } from 'node:test';
import { checkConfigFiles } from '../../src/cli/check-config-files.js';
import { parseConfig } from '../../src/config/load-config.js';
import { isMailotpError } from '../../src/core/errors.js';
import type { DeviceRecord, RequestRecord } from '../../src/core/types.js';
import { silentLogger } from '../../src/log/logger.js';
import { PushSubscriptionGoneError } from '../../src/core/ports/notifier.js';
import { generateVapidKeys, loadOrCreateVapidKeys, type VapidKeys } from '../../src/push/vapid-keys.js';
import webpush from 'web-push';
import { WebPushNotifier, type WebPushPayload } from '../../src/push/webpush-notifier.js';
import { SqliteStore } from '../../src/stores/sqlite-store.js';
import { decryptAes128gcm, PushServiceStandIn, verifyVapid, type BrowserSubscription } from '../helpers/push-service-stand-in.js';
import { coreFixture } from '../core/core-fixture.js';

const SUBJECT = 'mailto:admin@example.com';

function requestRecord(over: Partial<RequestRecord> = {}): RequestRecord {
  const now = Date.now();
  return {
    id: 'req0000000000000000001',
    type: 'connection',
    user: 'alice',
    deviceId: 'dev-1',
    protocol: 'imap',
    clientIp: '198.51.100.7',
    clientName: 'Thunderbird',
    createdAt: now,
    expiresAt: now + 300_000,
    status: 'pending',
    ...over,
  };
}

function deviceWith(sub: BrowserSubscription | null): DeviceRecord {
  return {
    deviceId: 'dev-1',
    user: 'alice',
    name: 'Pixel (web app)',
    tokenHash: 'f'.repeat(64),
    createdAt: Date.now(),
    ...(sub ? { webPush: { endpoint: sub.endpoint, keys: sub.keys } } : {}),
  };
}

describe('WebPushNotifier against a local push service', () => {
  let push: PushServiceStandIn;
  let agent: https.Agent;
  let keys: VapidKeys;
  let keyDir: string;
  let notifier: WebPushNotifier;

  before(async () => {
    push = await PushServiceStandIn.start();
    // Trust the stand-in's self-signed certificate for these requests only.
    agent = new https.Agent({ ca: push.ca, keepAlive: false });
    keyDir = mkdtempSync(path.join(os.tmpdir(), 'mailotp-vapid-'));
    keys = loadOrCreateVapidKeys(path.join(keyDir, 'vapid.json')).keys;
    notifier = new WebPushNotifier({ keys, subject: SUBJECT, agent, retries: 2, backoffMs: 10 }, silentLogger());
  });

  after(async () => {
    await notifier.close();
    agent.destroy();
    await push.stop();
    rmSync(keyDir, { recursive: true, force: true });
  });

  beforeEach(() => {
    push.deliveries.length = 0;
    push.script = [201];
  });

  it('pushes an encrypted request the subscription can decrypt, with VAPID, TTL until expiry, urgency high', async () => {
    const sub = push.subscribe();
    const r = requestRecord();
    const startedAt = Math.floor(Date.now() / 1000);
    await notifier.requestOpened(r, deviceWith(sub));
    const [d] = await push.waitForDeliveries(1);
    assert.ok(d);
    assert.equal(d.path, new URL(sub.endpoint).pathname);
    assert.equal(d.headers['content-encoding'], 'aes128gcm');
    assert.equal(d.headers.urgency, 'high');
    assert.equal(d.headers.topic, r.id);
    const ttl = Number(d.headers.ttl);
    assert.ok(ttl > 290 && ttl <= 300, `TTL ${ttl} should run until the request expires`);

    const payload = JSON.parse(decryptAes128gcm(d.body, sub).toString('utf8')) as WebPushPayload;
    assert.equal(payload.kind, 'request');
    if (payload.kind !== 'request') return;
    assert.equal(payload.request.id, r.id);
    assert.equal(payload.request.type, 'connection');
    assert.equal(payload.text, 'Thunderbird on IMAP from 198.51.100.7');
    assert.equal('deviceId' in payload.request, false);

    const { claims, publicKey } = verifyVapid(String(d.headers.authorization));
    assert.equal(publicKey, keys.publicKey);
    assert.equal(claims.aud, push.origin);
    assert.equal(claims.sub, SUBJECT);
    assert.ok(claims.exp > startedAt && claims.exp <= startedAt + 24 * 3600 + 5, `exp ${claims.exp}`);
  });

  it('carries the number choices of a login request, never the number to match', async () => {
    const sub = push.subscribe();
    const r = requestRecord({ id: 'req-login-0000000000001', type: 'login', protocol: 'web', choices: [17, 42, 83], matchNumber: 42 });
    delete r.clientName;
    await notifier.requestOpened(r, deviceWith(sub));
    const [d] = await push.waitForDeliveries(1);
    const plain = decryptAes128gcm(d!.body, sub).toString('utf8');
    const payload = JSON.parse(plain) as WebPushPayload;
    assert.equal(payload.kind === 'request' && payload.text, 'Web sign-in from 198.51.100.7');
    assert.deepEqual(payload.kind === 'request' && payload.request.choices, [17, 42, 83]);
    assert.equal(plain.includes('matchNumber'), false);
  });

  it('sends a close message, with the same topic, when the request is settled', async () => {
    const sub = push.subscribe();
    const r = requestRecord({ id: 'req-settled-00000000001', status: 'approved' });
    await notifier.requestSettled(r, deviceWith(sub));
    const [d] = await push.waitForDeliveries(1);
    assert.deepEqual(JSON.parse(decryptAes128gcm(d!.body, sub).toString('utf8')), { kind: 'close', id: r.id, status: 'approved' });
    assert.equal(d!.headers.topic, r.id);
    assert.equal(d!.headers.urgency, 'normal');
    assert.equal(Number(d!.headers.ttl), 12 * 3600);
  });

  it('tells a cleared device that it is unbound (deviceRemoved), and skips one without a subscription', async () => {
    const sub = push.subscribe();
    assert.equal(await notifier.deviceRemoved(deviceWith(sub)), undefined);
    const [d] = await push.waitForDeliveries(1);
    assert.equal(d!.path, new URL(sub.endpoint).pathname);
    assert.deepEqual(JSON.parse(decryptAes128gcm(d!.body, sub).toString('utf8')), { kind: 'unbound', deviceId: 'dev-1' });
    assert.equal(d!.headers.topic, 'unbound');
    assert.equal(verifyVapid(String(d!.headers.authorization)).publicKey, keys.publicKey);
    assert.equal(await notifier.deviceRemoved(deviceWith(null)), 'skipped');
    assert.equal(push.deliveries.length, 1);
  });

  it('tells the device that a recovery code was used (deviceNotice): urgent, no topic, and skips one without a subscription', async () => {
    const sub = push.subscribe();
    const notice = { kind: 'recovery-code-used', user: 'alice', left: 9, at: Date.UTC(2026, 0, 1) } as const;
    assert.equal(await notifier.deviceNotice(deviceWith(sub), notice), undefined);
    const [d] = await push.waitForDeliveries(1);
    assert.deepEqual(JSON.parse(decryptAes128gcm(d!.body, sub).toString('utf8')), { kind: 'notice', notice } satisfies WebPushPayload);
    assert.equal(d!.headers.urgency, 'high');
    assert.equal(d!.headers.topic, undefined);
    assert.equal(verifyVapid(String(d!.headers.authorization)).publicKey, keys.publicKey);
    assert.equal(await notifier.deviceNotice(deviceWith(null), notice), 'skipped');
    assert.equal(push.deliveries.length, 1);
  });

  it('skips a device without a subscription and a request that already expired', async () => {
    assert.equal(await notifier.requestOpened(requestRecord(), deviceWith(null)), 'skipped');
    // A settled request is remembered: a retry of its request message would come too late.
    assert.equal(await notifier.requestSettled(requestRecord(), null), 'skipped');
    assert.equal(await notifier.requestOpened(requestRecord(), deviceWith(push.subscribe())), 'skipped');
    const expired = requestRecord({ id: 'req-expired-00000000001', expiresAt: Date.now() - 1000 });
    assert.equal(await notifier.requestOpened(expired, deviceWith(push.subscribe())), 'skipped');
    assert.equal(push.deliveries.length, 0);
  });

  it('retries a 503 and a 429, and gives up on a 400 at once', async () => {
    const sub = push.subscribe();
    push.script = [503, 429, 201];
    await notifier.requestOpened(requestRecord({ id: 'req-retry-0000000000001' }), deviceWith(sub));
    assert.equal(push.deliveries.length, 3);

    push.deliveries.length = 0;
    push.script = [400];
    await assert.rejects(notifier.requestOpened(requestRecord({ id: 'req-refused-00000000001' }), deviceWith(sub)), /HTTP 400/);
    assert.equal(push.deliveries.length, 1);
  });

  it('reports a 404 or 410 as a gone subscription, without the endpoint in the message', async () => {
    for (const status of [404, 410]) {
      const sub = push.subscribe();
      push.script = [status];
      const err = await notifier.requestOpened(requestRecord({ id: `req-gone-${status}-000000000001` }), deviceWith(sub)).then(
        () => null,
        (e: unknown) => e,
      );
      assert.ok(err instanceof PushSubscriptionGoneError, String(err));
      assert.equal(err.endpoint, sub.endpoint);
      assert.equal(err.message.includes('/push/'), false);
    }
  });

  it('a 410 makes the core drop that subscription from the device, and nothing else of it', async () => {
    const store = new SqliteStore({ path: ':memory:' });
    const { devices, requests } = coreFixture({ store, notifiers: [notifier] });
    try {
      const bound = await devices.bind('alice', 'Pixel (web app)', false);
      assert.equal(bound.status, 'bound');
      if (bound.status !== 'bound') return;
      const sub = push.subscribe();
      await devices.setWebPush(bound.device, { endpoint: sub.endpoint, keys: sub.keys });
      await store.setPushToken(bound.device.deviceId, 'fcm-token-stays', 'android');
      const device = (await store.getDevice(bound.device.deviceId))!;
      push.script = [410];
      const opened = await requests.openConnection({ user: 'alice', device, protocol: 'imap', clientIp: '198.51.100.9', clientName: 'K-9 Mail' });
      assert.equal(opened.created, true);
      const end = Date.now() + 5000;
      while ((await store.getDevice(device.deviceId))?.webPush) {
        assert.ok(Date.now() < end, 'the subscription was not dropped');
        await new Promise((r) => setTimeout(r, 10));
      }
      const after = await store.getDevice(device.deviceId);
      assert.equal(after?.pushToken, 'fcm-token-stays');
      assert.equal(push.deliveries.length, 1);
    } finally {
      await store.close();
    }
  });
});

describe('VAPID key file', () => {
  let dir: string;
  before(() => {
    dir = mkdtempSync(path.join(os.tmpdir(), 'mailotp-vapid-'));
  });
  after(() => rmSync(dir, { recursive: true, force: true }));

  it('is created once (mode 0600, in a new folder) and then read back unchanged', () => {
    const file = path.join(dir, 'data', 'vapid.json');
    const first = loadOrCreateVapidKeys(file);
    assert.equal(first.created, true);
    assert.equal(statSync(file).mode & 0o777, 0o600);
    assert.equal(Buffer.from(first.keys.publicKey, 'base64url').length, 65);
    const second = loadOrCreateVapidKeys(file);
    assert.equal(second.created, false);
    assert.deepEqual(second.keys, first.keys);
    assert.deepEqual(JSON.parse(readFileSync(file, 'utf8')), first.keys);
  });

  it('makes pairs that web-push takes, whose private scalar belongs to the public point', () => {
    for (let i = 0; i < 20; i++) {
      const keys = generateVapidKeys();
      assert.doesNotThrow(() => webpush.setVapidDetails('mailto:admin@example.com', keys.publicKey, keys.privateKey));
      const ecdh = createECDH('prime256v1');
      ecdh.setPrivateKey(Buffer.from(keys.privateKey, 'base64url'));
      assert.equal(ecdh.getPublicKey('base64url'), keys.publicKey);
    }
  });

  it('refuses a file that holds no key pair, naming the config key and never creating over it', () => {
    const file = path.join(dir, 'broken.json');
    writeFileSync(file, '{"publicKey":"abc","privateKey":"def"}');
    assert.throws(
      () => loadOrCreateVapidKeys(file),
      (err: unknown) => isMailotpError(err, 'MAILOTP_ERR_CONFIG') && /push\.webpush\.vapidKeyFile/.test((err as Error).message),
    );
    assert.equal(readFileSync(file, 'utf8'), '{"publicKey":"abc","privateKey":"def"}');
    // check-config says so too; a missing file is fine there (the first start creates it).
    const doc = (vapidKeyFile: string) => ({
      listeners: [{ protocol: 'imap', port: 993, tls: 'implicit' }],
      tls: { cert: 'x.crt', key: 'x.key' },
      upstream: { imap: { host: 'mail.internal', port: 993, tls: 'implicit' } },
      push: { webpush: { subject: 'mailto:admin@example.com', vapidKeyFile } },
    });
    const about = (f: string) => checkConfigFiles(parseConfig(doc(f), dir)).filter((p) => p.path === 'push.webpush.vapidKeyFile');
    assert.equal(about(file).length, 1);
    assert.match(about(file)[0]!.message, /does not hold a VAPID key pair/);
    assert.deepEqual(about(path.join(dir, 'not-yet.json')), []);
  });
});
