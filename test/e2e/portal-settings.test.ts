import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type { Page } from 'playwright-core';
import { portalPassword, raw, signIn, signInWithPhone, startPortalFixture, type PortalFixture } from './browser-kit.js';
import { decide, enrol, imapClient, waitForRequest, type MailotpProcess } from './harness.js';

const pw = portalPassword;

// A Chromium per file on a shared machine: the file may take longer than one test's limit.
describe('portal settings, headers, CSRF and languages in headless Chromium (real Dovecot, real binary)', { timeout: 600_000 }, () => {
  let fx: PortalFixture;
  let m: MailotpProcess;
  const newPage = (opts: { locale?: string } = {}): Promise<Page> => fx.newPage(opts);
  const showJson = (user: string) => fx.showUser(user);

  before(async () => {
    fx = await startPortalFixture(['pat', 'rita', 'zhao', 'csrf']);
    m = fx.m;
  });
  after(async () => {
    await fx?.close();
  });

  it('sends strict security headers and a CSP that allows nothing inline', async () => {
    const r = await raw(m.portal, 'GET', '/');
    assert.equal(r.status, 200);
    const csp = String(r.headers['content-security-policy']);
    for (const d of ["default-src 'self'", "script-src 'self'", "style-src 'self'", "img-src 'self' data:", "frame-ancestors 'none'", "worker-src 'self'", "manifest-src 'self'"]) {
      assert.ok(csp.includes(d), `CSP has ${d}: ${csp}`);
    }
    assert.ok(!csp.includes('unsafe-inline'));
    assert.match(String(r.headers['strict-transport-security']), /max-age=\d+/);
    assert.equal(r.headers['x-content-type-options'], 'nosniff');
    assert.equal(r.headers['x-frame-options'], 'DENY');
    assert.equal(r.headers['referrer-policy'], 'no-referrer');
    const cookies = ([] as string[]).concat(r.headers['set-cookie'] ?? []);
    const csrf = cookies.find((c) => c.startsWith('__Host-mailotp-csrf='));
    assert.ok(csrf && /HttpOnly/i.test(csrf) && /Secure/i.test(csrf) && /SameSite=Strict/i.test(csrf), `CSRF cookie flags: ${csrf}`);
    assert.ok(!/<script>|<style>| style="| on\w+="/i.test(r.text), 'no inline script, style or handler');
    const device = await raw(m.portal, 'GET', '/api/v1/device/requests');
    assert.equal(device.status, 401);
    assert.ok(String(device.headers['content-security-policy']).includes("default-src 'self'"), 'the APIs get the headers too');
  });

  it('refuses a form posted without its CSRF token, and changes nothing', async () => {
    const page = await newPage();
    await signIn(page, 'csrf', pw('csrf'));
    await page.waitForURL('**/settings');
    const cookie = (await page.context().cookies()).map((c) => `${c.name}=${c.value}`).join('; ');
    const forged = await raw(m.portal, 'POST', '/settings/daemon-otp', { cookie, 'content-type': 'application/x-www-form-urlencoded' }, 'daemonOtp=on');
    assert.equal(forged.status, 403);
    assert.match(forged.text, /This page has expired/);
    const wrong = await raw(m.portal, 'POST', '/settings/daemon-otp', { cookie, 'content-type': 'application/x-www-form-urlencoded' }, 'daemonOtp=on&_csrf=forged');
    assert.equal(wrong.status, 403);
    assert.equal((await showJson('csrf')).daemonOtp, false);
    const signin = await raw(m.portal, 'POST', '/signin', { 'content-type': 'application/x-www-form-urlencoded' }, `user=csrf&password=${pw('csrf')}`);
    assert.equal(signin.status, 403, 'the sign-in form too');
  });

  it('turns the mail-app switch on and off', async () => {
    const page = await newPage();
    await signIn(page, 'pat', pw('pat'));
    await page.waitForURL('**/settings');
    const toggle = page.getByRole('switch', { name: 'Two-factor required for send/receive' });
    assert.equal(await toggle.isChecked(), false);
    await toggle.click();
    await page.getByText('Saved.').waitFor();
    assert.equal(await page.getByRole('switch', { name: 'Two-factor required for send/receive' }).isChecked(), true);
    assert.equal((await showJson('pat')).daemonOtp, true);
    await page.getByRole('switch', { name: 'Two-factor required for send/receive' }).click();
    await page.waitForURL('**/settings?done=saved');
    await page.getByRole('switch', { name: 'Two-factor required for send/receive', checked: false }).waitFor();
    assert.equal((await showJson('pat')).daemonOtp, false);
  });

  it('lists an approved mail connection and revokes it', async () => {
    const token = await enrol(m, 'rita');
    const client = imapClient(m.imaps, 'rita', pw('rita'), { localAddress: '127.0.0.3' });
    const connecting = client.connect();
    const req = await waitForRequest(m.portal, token, (r) => r.type === 'connection');
    await decide(m.portal, token, req.id, 'approve');
    await connecting;
    await client.logout();

    const page = await newPage();
    await signInWithPhone(page, m.portal, token, 'rita', pw('rita'));
    const approvals = page.getByRole('region', { name: 'Approved connections' });
    const row = approvals.getByRole('row').filter({ hasText: '127.0.0.3' });
    await row.getByText('imapflow-e2e').waitFor();
    await row.getByRole('cell', { name: 'IMAP', exact: true }).waitFor();
    await row.getByRole('button', { name: 'Revoke' }).click();
    await page.getByText('The connection was revoked.').waitFor();
    await approvals.getByText('No approved connections.').waitFor();
    const listed = await m.cli(['approvals', 'list', '--user', 'rita', '--json']);
    assert.deepEqual((JSON.parse(listed.stdout) as { approvals: unknown[] }).approvals, []);
  });

  it('speaks Traditional Chinese by Accept-Language, and switches with ?lang=', async () => {
    const page = await newPage({ locale: 'zh-TW' });
    await page.goto('/');
    assert.equal(await page.locator('html').getAttribute('lang'), 'zh-TW');
    await page.getByLabel('使用者名稱').fill('zhao');
    await page.getByLabel('密碼').fill(pw('zhao'));
    await page.getByRole('button', { name: '登入' }).click();
    await page.waitForURL('**/settings');
    await page.getByRole('button', { name: '綁定手機' }).waitFor();
    await page.getByRole('switch', { name: '收發郵件需要雙重驗證' }).waitFor();
    await page.getByRole('button', { name: '登出' }).waitFor();
    await page.getByRole('link', { name: 'English' }).click();
    await page.getByRole('button', { name: 'Bind a phone' }).waitFor();
    await page.goto('/settings');
    await page.getByRole('button', { name: 'Bind a phone' }).waitFor();
    await page.goto('/settings?lang=zh-TW');
    await page.getByRole('button', { name: '綁定手機' }).waitFor();
  });
});
