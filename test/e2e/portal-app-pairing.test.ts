import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type { Page } from 'playwright-core';
import type { MailotpProcess } from './harness.js';
import type { PageGlobals } from './web-app-kit.js';
import { startPortalAppBed, type AppPhone, type PortalAppBed } from './portal-app-kit.js';

/**
 * Issue 10 as a user meets it: the portal's pages on a desktop-sized context and the web
 * authenticator app at /app on a phone-sized one, side by side, both served by the real binary in
 * front of a real Dovecot, under the pages' CSP (every app page is checked for console errors and
 * CSP violations).
 */
describe('pairing the web authenticator app from the portal: QR link, code, clear (headless Chromium, real binary, real Dovecot)', { timeout: 600_000 }, () => {
  let bed: PortalAppBed;
  let m: MailotpProcess;
  /** Paired by the code test, cleared by the last one. */
  let ben: { app: AppPhone; desktop: Page } | undefined;

  before(async () => {
    bed = await startPortalAppBed(['ann', 'ben']);
    m = bed.fx.m;
  });
  after(async () => {
    await bed?.close();
  });

  it('QR link (zh-TW on both): the phone opens the pair link in /app, picks the matching number, and the desktop moves on by itself', async () => {
    const desktop = await bed.settingsPage('ann', 'zh-TW');
    await desktop.getByRole('button', { name: '綁定手機' }).click();
    await desktop.getByRole('img', { name: '配對 QR 碼' }).waitFor();
    const link = new URL(String(await desktop.getByTestId('pair-link').textContent()));
    const number = String(await desktop.getByTestId('match-number').textContent());

    const app = await bed.phone('zh-TW');
    await app.page.goto(link.pathname + link.hash);
    await app.page.getByText('正在為 ann 配對這支手機').waitFor();
    const buttons = app.page.locator('#link-numbers button');
    await buttons.first().waitFor();
    assert.equal(await buttons.count(), 3);
    await app.page.getByRole('button', { name: number, exact: true }).click();
    await app.page.getByText('正在為 ann 核准').waitFor();
    await app.page.locator('#live', { hasText: '即時' }).waitFor();
    assert.equal(new URL(app.page.url()).hash, '', 'the pairing secret leaves the address bar');
    await desktop.getByText('您的手機已綁定。').waitFor();
    assert.deepEqual(await app.problems(), []);
  });
  it('code: the unpaired app shows its code, the desktop types it and Bind, and the app becomes paired', async () => {
    const { app, desktop } = await bed.pairedByCode('ben');
    ben = { app, desktop };
    await app.page.getByText('This phone is paired.').waitFor();
    // The service worker runs under the pages' CSP and helmet headers, scoped to the app.
    const scope = await app.page.evaluate(() => (globalThis as typeof globalThis & PageGlobals).navigator.serviceWorker.ready.then((r) => r.scope));
    assert.match(scope, /\/app\/$/);
    await desktop.getByTestId('device-name').waitFor();
    assert.match(String(await desktop.getByTestId('device-name').textContent()), /web app/);
    assert.deepEqual(await app.problems(), []);
  });
  it('"Clear bound device" with confirmation on the desktop: the app shows its unbound state', async () => {
    assert.ok(ben, 'the code test paired ben');
    const { app, desktop } = ben;
    await desktop.reload();
    await desktop.getByRole('button', { name: 'Clear bound device' }).click();
    await desktop.getByRole('heading', { name: 'Clear the bound phone?' }).waitFor();
    await desktop.getByRole('button', { name: 'Yes, clear it' }).click();
    await desktop.getByText('The bound phone was cleared.').waitFor();
    await m.waitForLog((e) => e.event === 'device.removed' && e.user === 'ben');
    // The stream ends at its next heartbeat (15 s) once the device is gone; the app then gets 401.
    await app.page.getByRole('heading', { name: 'This phone is no longer bound' }).waitFor({ timeout: 25_000 });
    await app.page.getByRole('button', { name: 'Pair again' }).waitFor();
    // The 401 is how the app learns it; nothing else went wrong.
    assert.deepEqual((await app.problems()).filter((p) => !/401/.test(p)), []);
  });
});
