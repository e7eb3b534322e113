import assert from 'node:assert/strict';
import { createHmac } from 'node:crypto';
import http from 'node:http';
import https from 'node:https';
import type { AddressInfo } from 'node:net';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import type { Browser, BrowserContext, Page } from 'playwright-core';
import type { DeviceRecord } from '../../src/core/types.js';
import { silentLogger } from '../../src/log/logger.js';
import type { DeviceNotice } from '../../src/core/ports/notifier.js';
import { loadOrCreateVapidKeys } from '../../src/push/vapid-keys.js';
import { WebPushNotifier } from '../../src/push/webpush-notifier.js';
import { startDovecot, type DovecotHandle } from '../helpers/dovecot.js';
import { decryptAes128gcm, PushServiceStandIn } from '../helpers/push-service-stand-in.js';
import { launchChromium, openPairedApp, PHONE, portalContext, portalPassword, signIn, signInWithPhone } from './browser-kit.js';
import { enrol, startMailotp, type MailotpProcess } from './harness.js';

const SECRET = 'e2e-recovery-hook-secret-0123456789';

/** What the service worker and the app page show, read in the page (this file compiles without the DOM library). */
interface SwGlobals {
  navigator: { serviceWorker: { ready: Promise<{ getNotifications(): Promise<{ title: string; body: string }[]> }>; controller: unknown } };
}

/** Password, then "Use another method", "Recovery code" and the code. */
async function signInWithRecoveryCode(page: Page, user: string, code: string): Promise<void> {
  await signIn(page, user, portalPassword(user));
  await page.getByRole('button', { name: 'Use another method' }).click();
  await page.getByRole('button', { name: 'Recovery code' }).click();
  await page.getByLabel('Code', { exact: true }).fill(code);
  await page.getByRole('button', { name: 'Verify' }).click();
  await page.waitForURL('**/settings');
}

describe('a used recovery code is pushed to the bound device: signed webhook from the real binary, Web Push shown by the app\'s service worker in Chromium', { timeout: 600_000 }, () => {
  let dovecot: DovecotHandle;
  let m: MailotpProcess;
  let browser: Browser;
  let hookServer: http.Server;
  const hooks: { headers: http.IncomingHttpHeaders; body: string }[] = [];
  const contexts: BrowserContext[] = [];
  let token = '';
  let codes: string[] = [];

  before(async () => {
    hookServer = http.createServer((req, res) => {
      let body = '';
      req.setEncoding('utf8');
      req.on('data', (c: string) => (body += c));
      req.on('end', () => {
        hooks.push({ headers: req.headers, body });
        res.writeHead(204).end();
      });
    });
    await new Promise<void>((resolve) => hookServer.listen(0, '127.0.0.1', resolve));
    dovecot = await startDovecot({ users: [{ user: 'nora', password: portalPassword('nora') }] });
    m = await startMailotp({ dovecot, push: { webhook: { url: `http://127.0.0.1:${(hookServer.address() as AddressInfo).port}/hook`, secret: SECRET } } });
    browser = await launchChromium();
  });
  after(async () => {
    for (const c of contexts) await c.close().catch(() => undefined);
    await browser?.close();
    await m?.stop();
    await dovecot?.stop();
    hookServer?.closeAllConnections();
    await new Promise<void>((resolve) => hookServer?.close(() => resolve()));
  });

  it('signing in with a recovery code sends the device "recovery code used, N left"; the web app shows it as a notification and on its page', async () => {
    token = await enrol(m, 'nora');
    const ctx = await portalContext(browser, m.portal);
    contexts.push(ctx);
    const page = await ctx.newPage();
    await signInWithPhone(page, m.portal, token, 'nora', portalPassword('nora'));
    await page.getByRole('button', { name: 'Generate recovery codes' }).click();
    codes = (await page.getByTestId('recovery-codes').getByRole('listitem').allTextContents()).map((c) => c.trim());
    await page.getByRole('button', { name: 'Sign out' }).click();

    await signInWithRecoveryCode(page, 'nora', codes[3]!);

    // The webhook: one signed recovery.used for nora's device.
    const deadline = Date.now() + 15_000;
    let hook: (typeof hooks)[number] | undefined;
    while (!(hook = hooks.find((h) => h.body.includes('"recovery.used"')))) {
      assert.ok(Date.now() < deadline, `no recovery.used webhook; got ${hooks.map((h) => h.body).join('\n')}`);
      await new Promise((r) => setTimeout(r, 50));
    }
    const ts = String(hook.headers['x-mailotp-timestamp']);
    assert.equal(hook.headers['x-mailotp-signature'], 'sha256=' + createHmac('sha256', SECRET).update(`${ts}.${hook.body}`).digest('hex'));
    const body = JSON.parse(hook.body) as { event: string; notice: { user: string; left: number; at: string }; device: { deviceId: string; name: string } };
    const device = (JSON.parse((await m.cli(['user', 'show', 'nora', '--json'])).stdout) as { device: { deviceId: string } }).device;
    assert.equal(body.event, 'recovery.used');
    assert.deepEqual([body.notice.user, body.notice.left, body.device.deviceId], ['nora', 9, device.deviceId]);
    assert.ok(Math.abs(Date.parse(body.notice.at) - Date.now()) < 120_000);
    await m.waitForLog((e) => e.event === 'recovery.used' && e.user === 'nora' && e.left === 9);

    // Web Push: what the notifier sends, decrypted at a push-service stand-in, handed to the app's real service worker.
    const push = await PushServiceStandIn.start();
    const keyDir = mkdtempSync(join(tmpdir(), 'mailotp-rn-'));
    const agent = new https.Agent({ ca: push.ca });
    const notifier = new WebPushNotifier({ keys: loadOrCreateVapidKeys(join(keyDir, 'vapid.json')).keys, subject: 'mailto:admin@example.com', agent, retries: 0 }, silentLogger());
    try {
      const sub = push.subscribe();
      const notice: DeviceNotice = { kind: 'recovery-code-used', user: body.notice.user, left: body.notice.left, at: Date.parse(body.notice.at) };
      const record = { deviceId: device.deviceId, user: 'nora', name: 'Test phone', tokenHash: '0'.repeat(64), createdAt: 0, webPush: { endpoint: sub.endpoint, keys: sub.keys } } satisfies DeviceRecord;
      await notifier.deviceNotice(record, notice);
      const [delivery] = await push.waitForDeliveries(1);
      const payload = decryptAes128gcm(delivery!.body, sub).toString('utf8');

      const phoneCtx = await portalContext(browser, m.portal, { viewport: PHONE });
      contexts.push(phoneCtx);
      const origin = `https://localhost:${m.portal}`;
      await phoneCtx.grantPermissions(['notifications'], { origin });
      const phone = await phoneCtx.newPage();
      await openPairedApp(phone, { token, deviceId: device.deviceId, user: 'nora' });
      await phone.locator('#live', { hasText: /Live/ }).waitFor();
      // An active worker is enough: it posts the notice to every app window, controlled or not (a page
      // loaded while the worker was still installing stays uncontrolled until its next load).
      await phone.evaluate(async () => (globalThis as typeof globalThis & SwGlobals).navigator.serviceWorker.ready);
      const cdp = await phoneCtx.newCDPSession(phone);
      const registrations = new Map<string, string>();
      cdp.on('ServiceWorker.workerRegistrationUpdated', (e: { registrations: { registrationId: string; scopeURL: string }[] }) => {
        for (const r of e.registrations) registrations.set(r.scopeURL, r.registrationId);
      });
      await cdp.send('ServiceWorker.enable');
      const until = Date.now() + 15_000;
      while (!registrations.has(`${origin}/app/`)) {
        assert.ok(Date.now() < until, 'no service worker registration reported');
        await new Promise((r) => setTimeout(r, 20));
      }
      await cdp.send('ServiceWorker.deliverPushMessage', { origin, registrationId: registrations.get(`${origin}/app/`)!, data: payload });
      const text = 'A recovery code was used to sign in as nora; 9 left. If this was not you, change your password now.';
      await phone.getByTestId('device-notice').filter({ hasText: text }).waitFor();
      const shown = await phone.evaluate(async () => {
        const reg = await (globalThis as typeof globalThis & SwGlobals).navigator.serviceWorker.ready;
        return (await reg.getNotifications()).map((n) => ({ title: n.title, body: n.body }));
      });
      assert.deepEqual(shown, [{ title: 'Recovery code used', body: text }]);
    } finally {
      await notifier.close();
      agent.destroy();
      await push.stop();
      rmSync(keyDir, { recursive: true, force: true });
    }
  });

  it('an open web app shows the notice from its event stream alone, without Web Push', async () => {
    assert.ok(codes.length > 0, 'the first test generated the codes');
    const device = (JSON.parse((await m.cli(['user', 'show', 'nora', '--json'])).stdout) as { device: { deviceId: string } }).device;
    // No notification permission: nothing can arrive by push, only by the stream the page follows.
    const phoneCtx = await portalContext(browser, m.portal, { viewport: PHONE });
    contexts.push(phoneCtx);
    const phone = await phoneCtx.newPage();
    await openPairedApp(phone, { token, deviceId: device.deviceId, user: 'nora' });
    await phone.locator('#live', { hasText: /Live/ }).waitFor();
    assert.equal(await phone.getByTestId('device-notice').isVisible(), false, 'a fresh stream replays no old notice');

    const ctx = await portalContext(browser, m.portal);
    contexts.push(ctx);
    const page = await ctx.newPage();
    await signInWithRecoveryCode(page, 'nora', codes[5]!);
    const text = 'A recovery code was used to sign in as nora; 8 left. If this was not you, change your password now.';
    await phone.getByTestId('device-notice').filter({ hasText: text }).waitFor();
  });
});
