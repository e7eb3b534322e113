import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import https from 'node:https';
import type { AddressInfo } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { Writable } from 'node:stream';
import { after, afterEach, before, beforeEach, describe, test } from 'node:test';
import { FakeClock } from '../../src/core/clock.js';
import { isMailotpError } from '../../src/core/errors.js';
import { RequestService } from '../../src/core/request-service.js';
import type { DeviceRecord, RequestRecord } from '../../src/core/types.js';
import { createLogger, silentLogger, type Logger } from '../../src/log/logger.js';
import { FcmNotifier, type FcmOptions } from '../../src/push/fcm-notifier.js';
import { PushTokenRejectedError } from '../../src/core/ports/notifier.js';
import { SqliteStore } from '../../src/stores/sqlite-store.js';
import { caSignedCert, serviceAccountKeyPem } from '../helpers/certs.js';
import { LocalFcmAgent } from '../helpers/fcm-stand-in.js';
import { coreFixture } from '../core/core-fixture.js';

const PROJECT = 'mailotp-test';
const SEND_PATH = `/v1/projects/${PROJECT}/messages:send`;
const PUSH_TOKEN = 'fcm-registration-token-abc123:APA91b-secret';
const ACCESS_TOKEN = 'test-token';
const T0 = Date.UTC(2026, 0, 1, 12);

interface Received {
  method: string;
  url: string;
  headers: Record<string, string | string[] | undefined>;
  body: unknown;
}

interface Answer {
  status: number;
  body: unknown;
}

const OK: Answer = { status: 200, body: { name: `projects/${PROJECT}/messages/0:1` } };
const UNREGISTERED: Answer = {
  status: 404,
  body: {
    error: {
      code: 404,
      message: 'Requested entity was not found.',
      status: 'NOT_FOUND',
      details: [{ '@type': 'type.googleapis.com/google.firebase.fcm.v1.FcmError', errorCode: 'UNREGISTERED' }],
    },
  },
};
const INTERNAL: Answer = { status: 500, body: { error: { code: 500, message: 'Internal error encountered.', status: 'INTERNAL' } } };
const BAD_ARGUMENT: Answer = { status: 400, body: { error: { code: 400, message: 'Invalid value at message.data', status: 'INVALID_ARGUMENT' } } };

const request: RequestRecord = {
  id: 'req0000000000000000042',
  type: 'connection',
  user: 'alice',
  deviceId: 'dev-1',
  protocol: 'imap',
  clientIp: '203.0.113.7',
  clientName: 'Outlook',
  createdAt: T0,
  expiresAt: T0 + 300_000,
  status: 'pending',
};

const device: DeviceRecord = {
  deviceId: 'dev-1',
  user: 'alice',
  name: 'Pixel',
  tokenHash: 'e'.repeat(64),
  createdAt: T0 - 86_400_000,
  pushToken: PUSH_TOKEN,
  pushPlatform: 'android',
};

describe('FcmNotifier through firebase-admin to a local fcm.googleapis.com', () => {
  let dir: string;
  let certs: { ca: Buffer; cert: Buffer; key: Buffer };
  let server: https.Server;
  let port: number;
  let received: Received[];
  /** Answers in order; the last one repeats. */
  let script: Answer[];
  let logLines: string[];
  let logger: Logger;
  let clock: FakeClock;
  const open: FcmNotifier[] = [];

  before(async () => {
    dir = mkdtempSync(path.join(os.tmpdir(), 'mailotp-fcm-'));
    // A CA and a certificate for fcm.googleapis.com that only this test trusts.
    certs = caSignedCert(dir, 'fcm', ['fcm.googleapis.com'], { name: 'ca', cn: 'mailotp FCM test CA' });
    server = https.createServer({ key: certs.key, cert: certs.cert }, (req, res) => {
      let text = '';
      req.setEncoding('utf8');
      req.on('data', (c: string) => (text += c));
      req.on('end', () => {
        let body: unknown = text;
        try {
          body = JSON.parse(text);
        } catch {
          // kept as text
        }
        received.push({ method: req.method ?? '', url: req.url ?? '', headers: req.headers, body });
        const answer = (script.length > 1 ? script.shift() : script[0]) ?? OK;
        res.writeHead(answer.status, { 'content-type': 'application/json; charset=UTF-8' });
        res.end(JSON.stringify(answer.body));
      });
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    port = (server.address() as AddressInfo).port;
  });

  after(async () => {
    server.closeAllConnections();
    await new Promise<void>((resolve) => server.close(() => resolve()));
    rmSync(dir, { recursive: true, force: true });
  });

  beforeEach(() => {
    received = [];
    script = [OK];
    logLines = [];
    const destination = new Writable({
      write(chunk: Buffer, _enc, done) {
        logLines.push(chunk.toString('utf8'));
        done();
      },
    });
    logger = createLogger({ level: 'debug', destination, pretty: false });
    clock = new FakeClock(T0);
  });

  afterEach(async () => {
    await Promise.all(open.splice(0).map((n) => n.close()));
    const log = logLines.join('');
    assert.equal(log.includes(PUSH_TOKEN), false, 'the push token never reaches the log');
    assert.equal(log.includes(ACCESS_TOKEN), false, 'the access token never reaches the log');
  });

  function notifier(over: Partial<FcmOptions> = {}): FcmNotifier {
    const n = new FcmNotifier(
      {
        projectId: PROJECT,
        // Needs no network: firebase-admin asks it for the bearer token and caches the answer.
        credential: { getAccessToken: async () => ({ access_token: ACCESS_TOKEN, expires_in: 3600 }) },
        httpAgent: new LocalFcmAgent(port, certs.ca),
        publicUrl: 'https://mail.example.com:8443',
        backoffMs: 10,
        clock,
        ...over,
      },
      logger,
    );
    open.push(n);
    return n;
  }

  test('POSTs the request notification as FCM v1 JSON with the bearer token', async () => {
    clock.set(T0 + 1_500);
    await notifier().requestOpened(request, device);
    assert.equal(received.length, 1);
    const r = received[0]!;
    assert.equal(r.method, 'POST');
    assert.equal(r.url, SEND_PATH);
    assert.equal(r.headers.authorization, `Bearer ${ACCESS_TOKEN}`);
    assert.match(String(r.headers['content-type']), /^application\/json/);
    assert.deepEqual(r.body, {
      message: {
        token: PUSH_TOKEN,
        data: {
          action: 'request',
          requestId: request.id,
          type: 'connection',
          user: 'alice',
          protocol: 'imap',
          clientIp: '203.0.113.7',
          clientName: 'Outlook',
          createdAt: '2026-01-01T12:00:00.000Z',
          expiresAt: '2026-01-01T12:05:00.000Z',
          portalUrl: 'https://mail.example.com:8443',
        },
        notification: {
          title: 'Approve Outlook on IMAP from 203.0.113.7?',
          body: 'Sign-in as alice. Open the app to approve or deny.',
        },
        android: { priority: 'high', ttl: '298s', notification: { tag: request.id } },
        apns: {
          headers: {
            'apns-priority': '10',
            'apns-push-type': 'alert',
            'apns-expiration': String((T0 + 300_000) / 1000),
            'apns-collapse-id': request.id,
          },
        },
      },
    });
  });

  test('names an unknown client "a mail app" and passes number-matching choices as JSON', async () => {
    const { clientName: _drop, ...anonymous } = request;
    await notifier({ publicUrl: undefined }).requestOpened({ ...anonymous, protocol: 'smtp', choices: [12, 47, 90] }, device);
    const message = (received[0]?.body as { message: { data: Record<string, string>; notification: unknown } }).message;
    assert.deepEqual(message.notification, {
      title: 'Approve a mail app on SMTP from 203.0.113.7?',
      body: 'Sign-in as alice. Open the app to approve or deny. Pick the number shown on the sign-in page.',
    });
    assert.equal(message.data.choices, '[12,47,90]');
    assert.equal('clientName' in message.data, false);
    assert.equal('portalUrl' in message.data, false);
  });

  test('a settled request sends a data-only clear', async () => {
    await notifier().requestSettled({ ...request, status: 'approved', decidedAt: T0 + 5_000 }, device);
    assert.deepEqual(received[0]?.body, {
      message: {
        token: PUSH_TOKEN,
        data: { action: 'clear', requestId: request.id, status: 'approved' },
        android: { priority: 'high', ttl: '3600s' },
        apns: {
          headers: { 'apns-priority': '5', 'apns-push-type': 'background', 'apns-expiration': String(T0 / 1000 + 3600) },
          payload: { aps: { 'content-available': 1 } },
        },
      },
    });
  });

  test('a used recovery code is a notification with the notice as data; a device without a token is skipped', async () => {
    const notice = { kind: 'recovery-code-used', user: 'alice', left: 3, at: T0 } as const;
    await notifier().deviceNotice(device, notice);
    assert.deepEqual(received[0]?.body, {
      message: {
        token: PUSH_TOKEN,
        notification: { title: 'Recovery code used', body: 'A recovery code was used to sign in as alice; 3 left. If this was not you, change your password now.' },
        data: { action: 'notice', kind: 'recovery-code-used', user: 'alice', left: '3', at: new Date(T0).toISOString() },
        android: { priority: 'high', ttl: '43200s' },
        apns: { headers: { 'apns-priority': '10', 'apns-push-type': 'alert' } },
      },
    });
    const { pushToken: _t, ...tokenless } = device;
    assert.equal(await notifier().deviceNotice(tokenless, notice), 'skipped');
    assert.equal(received.length, 1);
  });

  test('retries a failing FCM with backoff and delivers once', async () => {
    script = [INTERNAL, INTERNAL, OK];
    const started = Date.now();
    await notifier({ backoffMs: 30 }).requestOpened(request, device);
    assert.equal(received.length, 3);
    assert.ok(Date.now() - started >= 30 + 60 - 5, 'waited 30 then 60 ms');
    assert.equal(new Set(received.map((r) => JSON.stringify(r.body))).size, 1, 'the same message every time');
  });

  test('gives up after the last retry, and at once on a message FCM refuses', async () => {
    script = [INTERNAL];
    await assert.rejects(notifier({ retries: 2 }).requestOpened(request, device), /after 3 attempt\(s\): messaging\/internal-error/);
    assert.equal(received.length, 3);
    received = [];
    script = [BAD_ARGUMENT];
    await assert.rejects(notifier().requestOpened(request, device), /refused the request message: messaging\/invalid-argument/);
    assert.equal(received.length, 1);
  });

  test('sends nothing to a device without a token', async () => {
    const { pushToken: _t, ...noToken } = device;
    assert.equal(await notifier().requestOpened(request, noToken), 'skipped');
    assert.equal(await notifier().requestSettled({ ...request, status: 'denied' }, null), 'skipped');
    assert.equal(received.length, 0);
  });

  test('reports UNREGISTERED as a rejected token, never retried', async () => {
    script = [UNREGISTERED];
    await assert.rejects(notifier().requestOpened(request, device), (err: unknown) => {
      assert.ok(err instanceof PushTokenRejectedError);
      assert.equal(err.token, PUSH_TOKEN);
      assert.equal(err.reason, 'messaging/registration-token-not-registered');
      assert.equal(err.message.includes(PUSH_TOKEN), false);
      return true;
    });
    assert.equal(received.length, 1);
  });

  describe('wired into the core with a real store', () => {
    let store: SqliteStore;
    let requests: RequestService;
    let fcm: FcmNotifier;

    beforeEach(async () => {
      store = new SqliteStore({ path: ':memory:' });
      fcm = notifier();
      ({ requests } = coreFixture({ store, clock, logger, notifiers: [fcm] }));
      await store.putDevice(device, false);
    });
    afterEach(async () => {
      await store.close();
    });

    async function until(what: string, cond: () => boolean | Promise<boolean>): Promise<void> {
      const deadline = Date.now() + 5_000;
      while (!(await cond())) {
        assert.ok(Date.now() < deadline, `timed out waiting for ${what}`);
        await new Promise((r) => setTimeout(r, 10));
      }
    }

    test('an unregistered token is dropped from the device', async () => {
      script = [UNREGISTERED];
      await requests.openConnection({ user: 'alice', device, protocol: 'imap', clientIp: '203.0.113.7' });
      await until('the token to go', async () => (await store.getDevice(device.deviceId))?.pushToken === undefined);
      const stored = await store.getDevice(device.deviceId);
      assert.equal(stored?.pushPlatform, undefined);
      assert.match(logLines.join(''), /"event":"device.push-token".*"action":"dropped"/);
      // The request stays answerable on the device API.
      assert.equal((await requests.listPending(device.deviceId)).length, 1);
    });

    test('a decision clears the notification it pushed', async () => {
      const { request: opened } = await requests.openConnection({ user: 'alice', device, protocol: 'imap', clientIp: '203.0.113.7', clientName: 'Outlook' });
      await until('the request push', () => received.length === 1);
      assert.equal((received[0]?.body as { message: { data: { action: string } } }).message.data.action, 'request');
      assert.equal((await requests.decide(device.deviceId, opened.id, 'approve')).status, 'approved');
      await until('the clear', () => received.length === 2);
      assert.deepEqual((received[1]?.body as { message: { data: unknown } }).message.data, { action: 'clear', requestId: opened.id, status: 'approved' });
    });

    test('the client name is cleaned in the data and the notification text alike', async () => {
      await requests.openConnection({ user: 'alice', device, protocol: 'imap', clientIp: '203.0.113.9', clientName: 'Out\u202elook\u2066\u0000\u200b' + 'z'.repeat(100) });
      await until('the request push', () => received.length === 1);
      const message = (received[0]?.body as { message: { data: { clientName: string }; notification: { title: string } } }).message;
      const cleaned = ('Outlook' + 'z'.repeat(100)).slice(0, 64);
      assert.equal(message.data.clientName, cleaned);
      assert.equal(message.notification.title, `Approve ${cleaned} on IMAP from 203.0.113.9?`);
    });

    test('an unanswered request is cleared as expired', async () => {
      const { request: opened } = await requests.openConnection({ user: 'alice', device, protocol: 'imap', clientIp: '203.0.113.8' });
      await until('the request push', () => received.length === 1);
      clock.advance(300_000);
      assert.equal(await requests.sweepExpired(), 1);
      await until('the clear', () => received.length === 2);
      assert.deepEqual((received[1]?.body as { message: { data: unknown } }).message.data, { action: 'clear', requestId: opened.id, status: 'expired' });
    });
  });
});

describe('FcmNotifier.fromServiceAccountFile', () => {
  let dir: string;
  before(() => {
    dir = mkdtempSync(path.join(os.tmpdir(), 'mailotp-fcm-sa-'));
  });
  after(() => rmSync(dir, { recursive: true, force: true }));

  const configError = (file: string, pattern: RegExp, secret?: string) =>
    assert.throws(
      () => FcmNotifier.fromServiceAccountFile(file, silentLogger()),
      (err: unknown) => {
        assert.ok(isMailotpError(err, 'MAILOTP_ERR_CONFIG'));
        assert.match(err.message, /^push\.fcm\.serviceAccountFile: /);
        assert.match(err.message, pattern);
        if (secret) assert.equal(err.message.includes(secret), false, 'the file content is not quoted');
        return true;
      },
    );

  test('refuses a missing file, a broken one and one that is no service account, without quoting it', () => {
    configError(path.join(dir, 'nope.json'), /cannot be read \(ENOENT\)/);
    const broken = path.join(dir, 'broken.json');
    writeFileSync(broken, '{"private_key": "-----BEGIN PRIVATE KEY-----\nMIIEsecretsecret');
    configError(broken, /is not valid JSON/, 'MIIEsecretsecret');
    const partial = path.join(dir, 'partial.json');
    writeFileSync(partial, JSON.stringify({ type: 'service_account', project_id: 'p', private_key: 'MIIEsecretsecret' }));
    configError(partial, /missing client_email/, 'MIIEsecretsecret');
  });

  test('builds from a service account key file', async () => {
    const file = path.join(dir, 'sa.json');
    writeFileSync(
      file,
      JSON.stringify({
        type: 'service_account',
        project_id: 'mailotp-prod',
        private_key_id: 'abc',
        private_key: serviceAccountKeyPem(),
        client_email: 'mailotp@mailotp-prod.iam.gserviceaccount.com',
      }),
    );
    const n = FcmNotifier.fromServiceAccountFile(file, silentLogger());
    assert.equal(n.name, 'fcm');
    await n.close();
  });
});
