import assert from 'node:assert/strict';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import type { Page } from 'playwright-core';
import { Authenticator } from './authenticator-kit.js';
import { PHONE, portalContext, portalPassword, signIn, signInWithPhone, startPortalFixture, type PortalFixture } from './browser-kit.js';
import { deviceApi, enrol, waitForRequest } from './harness.js';

const pw = portalPassword;
const SHOTS = join(process.cwd(), 'docs', 'screenshots');

const codeField = (page: Page) => page.getByLabel('Code', { exact: true });

describe('second factors in headless Chromium: authenticator app, recovery codes, default method, policy (real Dovecot, real binary)', { timeout: 600_000 }, () => {
  let fx: PortalFixture;
  const shots = process.env.MAILOTP_SCREENSHOTS === '1';

  before(async () => {
    fx = await startPortalFixture(['tina', 'ursula', 'vera'], 'https://localhost:0', { require: 1 });
  });
  after(async () => {
    await fx?.close();
  });

  it('sets up the authenticator app, signs in with it, refuses a wrong and a replayed code, falls back to a recovery code once, and switches the default', async () => {
    const page = await fx.newPage();
    await signIn(page, 'tina', pw('tina'));
    await page.waitForURL('**/settings');
    // Below portal.require: only the methods are offered.
    await page.getByText('Your administrator requires 1 more sign-in method(s).').waitFor();
    assert.equal(await page.getByRole('switch', { name: 'Two-factor required for send/receive' }).count(), 0);

    await page.getByRole('button', { name: 'Set up authenticator app' }).click();
    await page.getByRole('img', { name: 'Authenticator QR code' }).waitFor();
    const app = new Authenticator((await page.getByTestId('totp-secret').textContent()) ?? '');
    assert.match(app.secret, /^[A-Z2-7]{16,}$/);
    if (shots) await page.screenshot({ path: join(SHOTS, 'portal-totp-setup-desktop.png'), fullPage: true });
    const wrong = app.wrong();
    await codeField(page).fill(wrong);
    await page.getByRole('button', { name: 'Activate' }).click();
    await page.getByText('That code is not right.').waitFor();
    await codeField(page).fill(await app.code());
    await page.getByRole('button', { name: 'Activate' }).click();
    await page.getByText('Your authenticator app is set up.').waitFor();
    await page.getByRole('switch', { name: 'Two-factor required for send/receive' }).waitFor();
    assert.deepEqual((await fx.showUser('tina')).methods, ['totp']);

    // A new key asks first.
    await page.getByRole('button', { name: 'Generate new key' }).click();
    await page.getByRole('heading', { name: 'Generate a new key?' }).waitFor();
    await page.getByRole('link', { name: 'Cancel' }).click();

    await page.getByRole('button', { name: 'Generate recovery codes' }).click();
    const codes = (await page.getByTestId('recovery-codes').getByRole('listitem').allTextContents()).map((c) => c.trim());
    assert.equal(codes.length, 10);
    await page.getByRole('button', { name: 'Sign out' }).click();

    // Sign-in: the authenticator app first; a wrong code, then the right one.
    await signIn(page, 'tina', pw('tina'));
    await page.getByRole('heading', { name: 'Enter the code from your authenticator app' }).waitFor();
    if (shots) await page.screenshot({ path: join(SHOTS, 'portal-second-step-desktop.png'), fullPage: true });
    await codeField(page).fill(wrong);
    await page.getByRole('button', { name: 'Verify' }).click();
    await page.getByText('That code is not right. Check it and try again.').waitFor();
    const good = await app.code();
    await codeField(page).fill(good);
    await page.getByLabel('Remember this browser').check();
    await page.getByRole('button', { name: 'Verify' }).click();
    await page.waitForURL('**/settings');
    await page.getByRole('button', { name: 'Sign out' }).click();

    // Remembered: the password alone signs in on this browser, until it is revoked.
    await signIn(page, 'tina', pw('tina'));
    await page.waitForURL('**/settings');
    await page.getByTestId('remembered-browser').waitFor();
    await page.getByRole('button', { name: 'Revoke all' }).click();
    await page.getByText('No remembered browsers.').waitFor();
    await page.getByRole('button', { name: 'Sign out' }).click();

    // The same code again: refused as used.
    await signIn(page, 'tina', pw('tina'));
    await codeField(page).fill(good);
    await page.getByRole('button', { name: 'Verify' }).click();
    await page.getByText('That code was already used.').waitFor();

    // Use another method: only what tina has set up, without the one shown.
    await page.getByRole('button', { name: 'Use another method' }).click();
    await page.getByRole('button', { name: 'Recovery code' }).waitFor();
    for (const other of ['Phone', 'Authenticator app', 'Passkey']) assert.equal(await page.getByRole('button', { name: other, exact: true }).count(), 0, other);
    await page.getByRole('button', { name: 'Recovery code' }).click();
    await page.getByRole('heading', { name: 'Enter a recovery code' }).waitFor();
    await codeField(page).fill(codes[0]!);
    await page.getByRole('button', { name: 'Verify' }).click();
    await page.waitForURL('**/settings');
    await page.getByText('9 unused recovery codes left.').waitFor();

    // Default method: recovery code first from now on.
    await page.getByLabel('Offer first when signing in').selectOption({ label: 'Recovery code' });
    await page.getByRole('button', { name: 'Save', exact: true }).first().click();
    await page.waitForURL('**/settings?done=saved');
    assert.equal((await fx.showUser('tina')).defaultMethod, 'recovery');
    await page.getByRole('button', { name: 'Sign out' }).click();

    await signIn(page, 'tina', pw('tina'));
    await page.getByRole('heading', { name: 'Enter a recovery code' }).waitFor();
    await codeField(page).fill(codes[0]!);
    await page.getByRole('button', { name: 'Verify' }).click();
    await page.getByText('That recovery code is wrong or was already used.').waitFor();
    await page.getByRole('button', { name: 'Use another method' }).click();
    await page.getByRole('button', { name: 'Authenticator app' }).click();
    await codeField(page).fill(await app.code());
    await page.getByRole('button', { name: 'Verify' }).click();
    await page.waitForURL('**/settings');
  });

  it('a user below portal.require sees only the methods until one is set up; the CLI lists and resets them', async () => {
    const ctx = await portalContext(fx.browser, fx.m.portal, { viewport: PHONE });
    const page = await ctx.newPage();
    try {
      await signIn(page, 'ursula', pw('ursula'));
      await page.waitForURL('**/settings');
      await page.getByText('Your administrator requires 1 more sign-in method(s).').waitFor();
      assert.equal(await page.getByRole('region', { name: 'Approved connections' }).count(), 0);
      if (shots) await page.screenshot({ path: join(SHOTS, 'portal-require-phone.png'), fullPage: true });
      await page.getByRole('button', { name: 'Set up authenticator app' }).click();
      await page.getByTestId('totp-secret').waitFor();
      if (shots) await page.screenshot({ path: join(SHOTS, 'portal-totp-setup-phone.png'), fullPage: true });
      await page.getByRole('button', { name: 'Generate recovery codes' }).click();
      await page.getByTestId('recovery-codes').waitFor();
      if (shots) await page.screenshot({ path: join(SHOTS, 'portal-recovery-codes-phone.png'), fullPage: true });
      await page.getByRole('region', { name: 'Approved connections' }).waitFor();
      const scroll = await page.evaluate<number>('document.documentElement.scrollWidth - window.innerWidth');
      assert.ok(scroll <= 0, `no sideways scrolling at 360 px (${scroll})`);
    } finally {
      await ctx.close();
    }

    const show = await fx.m.cli(['user', 'show', 'URSULA']);
    assert.equal(show.code, 0, show.stderr);
    assert.match(show.stdout, /methods: +recovery \(default\)/);
    const none = await fx.m.cli(['user', 'reset', 'ursula', '--passkeys']);
    assert.equal(none.code, 1);
    assert.match(none.stdout, /Not set up: no passkeys/);
    const reset = await fx.m.cli(['user', 'reset', 'Ursula', '--recovery', '--json']);
    assert.equal(reset.code, 0, reset.stderr);
    assert.deepEqual(JSON.parse(reset.stdout), { user: 'ursula', removed: ['recovery'], notSetUp: [] });
    assert.match(reset.stderr, /user\.method-reset/);
    assert.deepEqual((await fx.showUser('ursula')).methods, []);
  });

  it('with a phone and an authenticator app: the phone first, then Use another method withdraws its request and the code of the app signs in', async () => {
    const token = await enrol(fx.m, 'vera');
    const page = await fx.newPage();
    await signInWithPhone(page, fx.m.portal, token, 'vera', pw('vera'));
    await page.getByRole('button', { name: 'Set up authenticator app' }).click();
    const app = new Authenticator((await page.getByTestId('totp-secret').textContent()) ?? '');
    await codeField(page).fill(await app.code());
    await page.getByRole('button', { name: 'Activate' }).click();
    await page.getByText('Your authenticator app is set up.').waitFor();
    await page.getByRole('button', { name: 'Sign out' }).click();

    await signIn(page, 'vera', pw('vera'));
    await page.getByTestId('match-number').waitFor();
    const pending = await waitForRequest(fx.m.portal, token, (r) => r.type === 'login');
    await page.getByRole('button', { name: 'Use another method' }).click();
    await page.getByRole('button', { name: 'Authenticator app' }).click();
    await codeField(page).fill(await app.code());
    await page.getByRole('button', { name: 'Verify' }).click();
    await page.waitForURL('**/settings');
    // The phone's request was withdrawn when the user turned to the app.
    const answer = await deviceApi(fx.m.portal, token, 'POST', `/api/v1/device/requests/${pending.id}`, { decision: 'approve', number: 10 });
    assert.equal(answer.status, 409);
  });
});
