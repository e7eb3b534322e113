import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { createECDH, randomBytes } from 'node:crypto';
import { readdirSync } from 'node:fs';
import { join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import { appStaticDir } from '../../src/portal/app/register-app.js';
import { after, before, describe, test } from 'node:test';
import { PortalServer } from '../../src/portal/portal-server.js';
import { bind, call, fixture, open, plainPortal, type Fixture, type Target } from './portal-kit.js';

const PUBLIC_KEY = 'BO' + 'A'.repeat(85);

function subscription(endpoint = 'https://fcm.googleapis.com/fcm/send/abc:def') {
  const ecdh = createECDH('prime256v1');
  ecdh.generateKeys();
  return { endpoint, expirationTime: null, keys: { p256dh: ecdh.getPublicKey().toString('base64url'), auth: randomBytes(16).toString('base64url') } };
}

/** What the web authenticator app needs from the portal besides requests and events. */
describe('web authenticator app routes', () => {
  let f: Fixture;
  let portal: PortalServer;
  let target: Target;

  before(async () => {
    f = fixture();
    portal = plainPortal(f, { webPushPublicKey: PUBLIC_KEY });
    target = { port: (await portal.listen()).port };
  });

  after(async () => {
    await portal?.close();
    await f?.store.close();
  });

  test('/app serves the page, the manifest (installable: icons, scope, start_url), the worker and the icons', async () => {
    const redirect = await call(target, 'GET', '/app');
    assert.equal(redirect.status, 301);
    assert.equal(redirect.headers.location, '/app/');
    const page = await call(target, 'GET', '/app/');
    assert.equal(page.status, 200);
    assert.match(String(page.headers['content-type']), /text\/html/);
    assert.match(page.text, /<link rel="manifest" href="\/app\/manifest.webmanifest">/);
    assert.equal(/<script>|<style>| style="| on\w+="/.test(page.text), false, 'no inline script or style');

    const manifest = await call(target, 'GET', '/app/manifest.webmanifest');
    assert.match(String(manifest.headers['content-type']), /^application\/manifest\+json/);
    const m = manifest.json as { start_url: string; scope: string; display: string; icons: { src: string; sizes: string }[] };
    assert.equal(m.start_url, '/app/');
    assert.equal(m.scope, '/app/');
    assert.equal(m.display, 'standalone');
    for (const size of ['192x192', '512x512']) {
      const icon = m.icons.find((i) => i.sizes === size);
      assert.ok(icon, size);
      const png = await call(target, 'GET', icon.src);
      assert.equal(png.status, 200);
      assert.equal(png.headers['content-type'], 'image/png');
    }
    const sw = await call(target, 'GET', '/app/sw.js');
    assert.equal(sw.status, 200);
    assert.match(String(sw.headers['content-type']), /javascript/);
    assert.equal(sw.headers['service-worker-allowed'], '/app/');
    const escape = await call(target, 'GET', '/app/../package.json');
    assert.ok([403, 404].includes(escape.status), String(escape.status));
    assert.equal(escape.text.includes('"dependencies"'), false);
    assert.equal((await call(target, 'GET', '/app?lang=zh-TW')).headers.location, '/app/?lang=zh-TW');
    assert.equal((await call(target, 'GET', '/app/nothing.js')).status, 404);
  });

  test('an installed package has the app: npm pack ships every static file, and the build finds them from dist', () => {
    const root = fileURLToPath(new URL('../../../', import.meta.url));
    const dir = appStaticDir();
    assert.equal(dir, join(root, 'src/portal/app/static/'));
    const walk = (d: string): string[] => readdirSync(d, { withFileTypes: true }).flatMap((e) => (e.isDirectory() ? walk(join(d, e.name)) : [join(d, e.name)]));
    const files = walk(dir).map((f) => relative(root, f)).sort();
    assert.ok(files.includes('src/portal/app/static/sw.js'));
    const packed = JSON.parse(execFileSync('npm', ['pack', '--dry-run', '--json', '--ignore-scripts'], { cwd: root, stdio: ['ignore', 'pipe', 'ignore'] }).toString()) as {
      files: { path: string }[];
    }[];
    const inPack = new Set(packed[0]!.files.map((f) => f.path));
    assert.deepEqual(files.filter((f) => !inPack.has(f)), []);
    assert.ok(inPack.has('dist/src/portal/app/register-app.js'));
  });

  test('GET /api/v1/webpush/key gives the VAPID public key', async () => {
    const r = await call(target, 'GET', '/api/v1/webpush/key');
    assert.equal(r.status, 200);
    assert.deepEqual(r.json, { publicKey: PUBLIC_KEY });
  });

  test('GET /api/v1/device/me names the device; 401 once it is removed', async () => {
    const { device, token } = await bind(f, 'mia');
    const me = await call(target, 'GET', '/api/v1/device/me', { token });
    assert.equal(me.status, 200);
    assert.deepEqual(me.json, { deviceId: device.deviceId, user: 'mia', name: "mia's phone", createdAt: new Date(device.createdAt).toISOString(), webPush: false });
    await f.devices.remove('mia');
    assert.equal((await call(target, 'GET', '/api/v1/device/me', { token })).status, 401);
  });

  test('approvals: the device lists and revokes its own user\'s, never another user\'s', async () => {
    const nia = await bind(f, 'nia');
    const oli = await bind(f, 'oli');
    for (const [who, ip] of [[nia, '10.9.0.1'], [nia, '10.9.0.2'], [oli, '10.9.0.3']] as const) {
      const r = await open(f, who.device, ip, 'Thunderbird');
      await f.requests.decide(who.device.deviceId, r.id, 'approve');
    }
    const list = await call(target, 'GET', '/api/v1/device/approvals', { token: nia.token });
    assert.equal(list.status, 200);
    const ips = (list.json as { approvals: { clientIp: string; approvedAt: string; expiresAt: string }[] }).approvals.map((a) => a.clientIp).sort();
    assert.deepEqual(ips, ['10.9.0.1', '10.9.0.2']);

    assert.equal((await call(target, 'DELETE', '/api/v1/device/approvals?clientIp=not-an-ip', { token: nia.token })).status, 400);
    const del = await call(target, 'DELETE', '/api/v1/device/approvals?clientIp=10.9.0.1', { token: nia.token });
    assert.deepEqual([del.status, del.json], [200, { revoked: 1 }]);
    // Another user's address: nothing of nia's matches, and oli's stays.
    assert.deepEqual((await call(target, 'DELETE', '/api/v1/device/approvals?clientIp=10.9.0.3', { token: nia.token })).json, { revoked: 0 });
    assert.equal((await f.approvals.list('oli')).length, 1);
    assert.deepEqual(
      (await f.approvals.list('nia')).map((a) => a.clientIp),
      ['10.9.0.2'],
    );
    assert.equal((await call(target, 'GET', '/api/v1/device/approvals')).status, 401);
  });

  test('PUT /api/v1/device/push-subscription stores a valid subscription and refuses bad ones', async () => {
    const { device, token } = await bind(f, 'pat');
    const good = subscription();
    const put = await call(target, 'PUT', '/api/v1/device/push-subscription', { token, body: good });
    assert.equal(put.status, 204);
    assert.deepEqual((await f.store.getDevice(device.deviceId))?.webPush, { endpoint: good.endpoint, keys: good.keys });
    assert.equal(((await call(target, 'GET', '/api/v1/device/me', { token })).json as { webPush: boolean }).webPush, true);

    const bad: [string, unknown][] = [
      ['http endpoint', { ...good, endpoint: 'http://fcm.googleapis.com/fcm/send/x' }],
      ['IP literal', { ...good, endpoint: 'https://10.0.0.1/push/x' }],
      ['IPv6 literal', { ...good, endpoint: 'https://[::1]:8443/push/x' }],
      ['localhost', { ...good, endpoint: 'https://localhost/push/x' }],
      ['credentials', { ...good, endpoint: 'https://u:p@push.example.com/x' }],
      ['no keys', { endpoint: good.endpoint }],
      ['short p256dh', { ...good, keys: { ...good.keys, p256dh: good.keys.p256dh.slice(0, 80) } }],
      ['p256dh not a point', { ...good, keys: { ...good.keys, p256dh: Buffer.alloc(65, 5).toString('base64url') } }],
      ['auth too long', { ...good, keys: { ...good.keys, auth: randomBytes(17).toString('base64url') } }],
      ['endpoint too long', { ...good, endpoint: 'https://push.example.com/' + 'a'.repeat(3000) }],
    ];
    for (const [what, body] of bad) {
      const r = await call(target, 'PUT', '/api/v1/device/push-subscription', { token, body });
      assert.equal(r.status, 400, what);
    }
    // Still the good one.
    assert.equal((await f.store.getDevice(device.deviceId))?.webPush?.endpoint, good.endpoint);
    assert.equal((await call(target, 'PUT', '/api/v1/device/push-subscription', { body: good })).status, 401);
  });
});
