import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { portalPassword, signIn } from './browser-kit.js';
import { imapClient, type MailotpProcess } from './harness.js';
import { startPortalAppBed, type PortalAppBed } from './portal-app-kit.js';
import { rawImapLogin } from './raw-client.js';
import { item } from './web-app-kit.js';

const pw = portalPassword;

/**
 * Issue 10 as a user meets it: the portal's pages on a desktop-sized context and the web
 * authenticator app at /app on a phone-sized one, side by side, both served by the real binary in
 * front of a real Dovecot, under the pages' CSP (every app page is checked for console errors and
 * CSP violations).
 */
describe('approving on the web authenticator app: web sign-in with number matching, held IMAP logins (headless Chromium, real binary, real Dovecot)', { timeout: 600_000 }, () => {
  let bed: PortalAppBed;
  let m: MailotpProcess;

  before(async () => {
    bed = await startPortalAppBed(['cal', 'dot']);
    m = bed.fx.m;
  });
  after(async () => {
    await bed?.close();
  });

  it('web sign-in: tapping the number the desktop shows signs in; another number denies', async () => {
    const { app } = await bed.pairedByCode('cal');
    const right = await bed.fx.newPage();
    await signIn(right, 'cal', pw('cal'));
    const shown = String(await right.getByTestId('match-number').textContent());
    const li = item(app.page, 'Web sign-in from');
    await li.getByRole('button', { name: shown, exact: true }).click();
    await right.waitForURL('**/settings');
    await right.getByText('Signed in as cal').waitFor();
    await li.waitFor({ state: 'detached' });

    const wrong = await bed.fx.newPage();
    await signIn(wrong, 'cal', pw('cal'));
    const other = String(await wrong.getByTestId('match-number').textContent());
    const li2 = item(app.page, 'Web sign-in from');
    const numbers = await li2.locator('.numbers button').allTextContents();
    assert.equal(numbers.length, 3);
    assert.ok(numbers.includes(other));
    await li2.getByRole('button', { name: numbers.find((n) => n !== other)!, exact: true }).click();
    await app.page.getByRole('status').filter({ hasText: /wrong number|Wrong number/i }).waitFor();
    await wrong.getByText('The sign-in was denied on your phone.').waitFor();
    assert.deepEqual(await app.problems(), []);
  });
  it('IMAP logins held for the app: Approve lets in, Deny refuses, "This wasn\'t me" refuses and cools the address down', async () => {
    const { app } = await bed.pairedByCode('dot', true);
    const held = (ip: string) => {
      const client = imapClient(m.imaps, 'dot', pw('dot'), { localAddress: ip });
      const login = client.connect().then(
        () => 'ok',
        (e: { serverResponseCode?: string }) => e.serverResponseCode ?? 'error',
      );
      return { client, login };
    };

    const a = held('127.0.0.41');
    const approveItem = item(app.page, /on IMAP from 127\.0\.0\.41/);
    await approveItem.getByRole('button', { name: 'Approve', exact: true }).click();
    assert.equal(await a.login, 'ok');
    await a.client.logout();
    await app.page.locator('#approvals li', { hasText: '127.0.0.41' }).waitFor();

    const d = held('127.0.0.42');
    await item(app.page, /on IMAP from 127\.0\.0\.42/).getByRole('button', { name: 'Deny', exact: true }).click();
    assert.equal(await d.login, 'AUTHENTICATIONFAILED');
    d.client.close();

    const r = held('127.0.0.43');
    await item(app.page, /on IMAP from 127\.0\.0\.43/).getByRole('button', { name: 'This wasn’t me', exact: true }).click();
    assert.equal(await r.login, 'AUTHENTICATIONFAILED');
    r.client.close();
    await app.page.getByRole('status').filter({ hasText: 'Reported and denied.' }).waitFor();
    // The next login from there is refused at once: no request reaches the phone.
    assert.match(await rawImapLogin(m.imaps, '127.0.0.43', 'dot', pw('dot')), /^a NO \[AUTHENTICATIONFAILED\]/);
    await m.waitForLog((e) => e.event === 'login.denied' && e.reason === 'report-cooldown' && e.clientIp === '127.0.0.43');
    assert.equal(await app.page.locator('#requests li').count(), 0);
    assert.deepEqual(await app.problems(), []);
  });
});
