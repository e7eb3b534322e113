import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type { Page } from 'playwright-core';
import { Authenticator } from './authenticator-kit.js';
import { portalPassword, signIn, signInWithPhone, startPortalFixture, type PortalFixture } from './browser-kit.js';
import { enrol, waitForRequest } from './harness.js';
import type { CodeRequest } from './push-code-kit.js';
import { rawImapLogin } from './raw-client.js';

const pw = portalPassword;
/** Five failures per user, seven per address, as the mail logins count them. */
const LIMITS = { failedLoginsPerUser: 5, failedLoginsPerIp: 7 };
const LIMITED = 'Too many failed sign-ins. Wait a while and try again.';
const MAILOTP_REFUSAL = /^a NO \[UNAVAILABLE\] Too many attempts/;

const codeField = (page: Page) => page.getByLabel('Code', { exact: true });

describe('wrong second-factor codes count as failed logins: TOTP, recovery and push codes reach the cap the mail logins share (headless Chromium, real Dovecot, real binary)', { timeout: 600_000 }, () => {
  let fx: PortalFixture;

  before(async () => {
    fx = await startPortalFixture(['wendy', 'xena'], 'https://localhost:0', {}, { limits: LIMITS });
  });
  after(async () => {
    await fx?.close();
  });

  it('after five wrong codes of three kinds even the right code and the right password are refused, and IMAP from that address too', async () => {
    const { m } = fx;
    const token = await enrol(m, 'wendy');
    const page = await fx.newPage();
    await signInWithPhone(page, m.portal, token, 'wendy', pw('wendy'));
    await page.getByRole('button', { name: 'Set up authenticator app' }).click();
    const app = new Authenticator((await page.getByTestId('totp-secret').textContent()) ?? '');
    await codeField(page).fill(await app.code());
    await page.getByRole('button', { name: 'Activate' }).click();
    await page.getByText('Your authenticator app is set up.').waitFor();
    await page.getByRole('button', { name: 'Generate recovery codes' }).click();
    await page.getByTestId('recovery-codes').waitFor();
    await page.getByRole('button', { name: 'Sign out' }).click();

    const use = async (method: string) => {
      await page.getByRole('button', { name: 'Use another method' }).click();
      await page.getByRole('button', { name: method, exact: true }).click();
    };
    const verify = async (code: string, expect: string) => {
      await codeField(page).fill(code);
      await page.getByRole('button', { name: 'Verify' }).click();
      await page.getByText(expect).waitFor();
    };

    // The password is right: its place in the counters is given back.
    await signIn(page, 'wendy', pw('wendy'));
    await page.getByTestId('match-number').waitFor();
    await use('Authenticator app');
    await verify(app.wrong(), 'That code is not right.');
    await verify(app.wrong(), 'That code is not right.');
    await use('Recovery code');
    await verify('aaaa-bbbb-cccc', 'That recovery code is wrong or was already used.');
    await verify('dddd-eeee-ffff', 'That recovery code is wrong or was already used.');
    await use('Phone');
    await page.getByRole('button', { name: 'Use a code instead' }).click();
    const request = (await waitForRequest(m.portal, token, (r) => r.type === 'login' && (r as CodeRequest).code !== undefined)) as CodeRequest;
    const right = request.code ?? '';
    await verify(right === '000000' ? '000001' : '000000', 'That code is not right.');
    await m.waitForLog((e) => e.event === 'web.push-code-wrong' && e.user === 'wendy');

    // Five failures: now even the right push code is refused, as rate-limited, and the request stays unanswered.
    await verify(right, LIMITED);
    assert.equal((await waitForRequest(m.portal, token, (r) => r.id === request.id)).id, request.id, 'the request still waits');
    // The right authenticator code too.
    await use('Authenticator app');
    await verify(await app.code(), LIMITED);
    assert.notEqual(new URL(page.url()).pathname, '/settings');

    // A new sign-in with the right password from this address: the same counter.
    await page.getByRole('button', { name: 'Cancel' }).click();
    await signIn(page, 'wendy', pw('wendy'));
    await page.getByText(LIMITED).waitFor();
    await m.waitForLog((e) => e.event === 'password.rate-limited' && e.user === 'wendy');
    // And the mail login: IMAP with the right password from the same address.
    assert.match(await rawImapLogin(m.imaps, '127.0.0.1', 'wendy', pw('wendy')), MAILOTP_REFUSAL);

    // Per address: two wrong passwords of another user fill this address's seven; then xena's right one is refused too.
    for (let i = 0; i < 2; i++) assert.doesNotMatch(await rawImapLogin(m.imaps, '127.0.0.1', 'xena', 'wrong-password'), MAILOTP_REFUSAL);
    assert.match(await rawImapLogin(m.imaps, '127.0.0.1', 'xena', pw('xena')), MAILOTP_REFUSAL);
    await signIn(page, 'xena', pw('xena'));
    await page.getByText(LIMITED).waitFor();
  });
});
