import assert from 'node:assert/strict';
import { createECDH, randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { startDovecot, type DovecotHandle } from '../helpers/dovecot.js';
import { cleanupDir, deviceApi, enrol, startMailotp } from './harness.js';

/** The app and Web Push as `mailotp start` serves them from the build (what an installed package runs). */
describe('web authenticator app and Web Push from the built binary', () => {
  let dovecot: DovecotHandle;
  let dir: string;

  before(async () => {
    dovecot = await startDovecot();
    dir = mkdtempSync(join(tmpdir(), 'mailotp-webpush-bin-'));
  });

  after(async () => {
    await dovecot?.stop();
    if (dir) cleanupDir(dir);
  });

  it('creates the VAPID key file once, serves its public key and the app, and keeps both across a restart', async () => {
    const push = { webpush: { subject: 'mailto:admin@example.com', vapidKeyFile: 'data/vapid.json' } };
    const first = await startMailotp({ dovecot, dir, push });
    let publicKey: string;
    try {
      await first.waitForLog((e) => e.msg === 'created a new VAPID key pair for Web Push; every instance must use this same file');
      const file = join(dir, 'data', 'vapid.json');
      assert.equal(statSync(file).mode & 0o777, 0o600);
      publicKey = (JSON.parse(readFileSync(file, 'utf8')) as { publicKey: string }).publicKey;
      const key = await deviceApi(first.portal, null, 'GET', '/api/v1/webpush/key');
      assert.deepEqual([key.status, key.json], [200, { publicKey }]);
      const page = await deviceApi(first.portal, null, 'GET', '/app/');
      assert.equal(page.status, 200);
      assert.match(String(page.json), /<link rel="manifest" href="\/app\/manifest.webmanifest">/);
      assert.equal((await deviceApi(first.portal, null, 'GET', '/app/sw.js')).status, 200);

      const token = await enrol(first, 'alice');
      const ecdh = createECDH('prime256v1');
      ecdh.generateKeys();
      const subscription = {
        endpoint: 'https://fcm.googleapis.com/fcm/send/e2e-test-subscription',
        expirationTime: null,
        keys: { p256dh: ecdh.getPublicKey().toString('base64url'), auth: randomBytes(16).toString('base64url') },
      };
      assert.equal((await deviceApi(first.portal, token, 'PUT', '/api/v1/device/push-subscription', subscription)).status, 204);
      const shown = await first.cli(['user', 'show', 'alice', '--json']);
      assert.equal((JSON.parse(shown.stdout) as { device: { webPush: boolean } }).device.webPush, true);
      // The endpoint is a capability URL: it stays out of the log.
      assert.equal(first.log().includes('e2e-test-subscription'), false);
      await first.waitForLog((e) => e.event === 'device.push-subscription' && e.pushService === 'fcm.googleapis.com');
    } finally {
      await first.stop();
    }

    const second = await startMailotp({ dovecot, dir, push });
    try {
      const key = await deviceApi(second.portal, null, 'GET', '/api/v1/webpush/key');
      assert.deepEqual(key.json, { publicKey });
      assert.equal(second.events().some((e) => String(e.msg).startsWith('created a new VAPID key pair')), false);
    } finally {
      await second.stop();
    }
  });
});
