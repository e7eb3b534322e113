import assert from 'node:assert/strict';
import https from 'node:https';
import { after, before, describe, it } from 'node:test';
import type { Browser, BrowserContext, Page } from 'playwright-core';
import { testCerts } from '../helpers/certs.js';
import { startDovecot, type DovecotHandle } from '../helpers/dovecot.js';
import { launchChromium, pairingApi, pickOnPhone, portalContext, signIn, signInWithPhone } from './browser-kit.js';
import { decide, deviceApi, enrol, imapClient, startMailotp, waitForRequest, type MailotpProcess } from './harness.js';

const NAMES = ['pat', 'cody', 'lina', 'wren', 'mona', 'nico', 'rita', 'zhao', 'csrf'] as const;
type Name = (typeof NAMES)[number];
const pw = (u: Name): string => `${u}-pw-1`;

/** A raw HTTPS request to the portal (no browser): for headers and what a forged form post gets. */
function raw(port: number, method: string, path: string, headers: Record<string, string> = {}, body?: string): Promise<{ status: number; headers: Record<string, string | string[] | undefined>; text: string }> {
  return new Promise((resolve, reject) => {
    const req = https.request({ host: '127.0.0.1', port, method, path, ca: testCerts().ca, servername: 'localhost', headers }, (res) => {
      let text = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => (text += c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, text }));
    });
    req.on('error', reject);
    req.end(body);
  });
}

describe('portal web pages in headless Chromium (real Dovecot, real binary)', () => {
  let dovecot: DovecotHandle;
  let m: MailotpProcess;
  let browser: Browser;
  const contexts: BrowserContext[] = [];

  const newPage = async (opts: { locale?: string } = {}): Promise<Page> => {
    const ctx = await portalContext(browser, m.portal, opts);
    contexts.push(ctx);
    return ctx.newPage();
  };

  const showJson = async (user: string): Promise<{ device: unknown; daemonOtp: boolean }> => {
    const r = await m.cli(['user', 'show', user, '--json']);
    assert.equal(r.code, 0, r.stderr);
    return JSON.parse(r.stdout) as { device: unknown; daemonOtp: boolean };
  };

  before(async () => {
    dovecot = await startDovecot({ users: NAMES.map((u) => ({ user: u, password: pw(u) })) });
    m = await startMailotp({ dovecot, portal: { publicUrl: 'https://localhost:0' } });
    browser = await launchChromium();
  });
  after(async () => {
    for (const c of contexts) await c.close().catch(() => undefined);
    await browser?.close();
    await m?.stop();
    await dovecot?.stop();
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
    assert.equal(r.headers['x-frame-options'], 'SAMEORIGIN');
    assert.equal(r.headers['referrer-policy'], 'no-referrer');
    const cookies = ([] as string[]).concat(r.headers['set-cookie'] ?? []);
    const csrf = cookies.find((c) => c.startsWith('__Host-mailotp-csrf='));
    assert.ok(csrf && /HttpOnly/i.test(csrf) && /Secure/i.test(csrf) && /SameSite=Strict/i.test(csrf), `CSRF cookie flags: ${csrf}`);
    assert.ok(!/<script>|<style>| style="| on\w+="/i.test(r.text), 'no inline script, style or handler');
    const device = await raw(m.portal, 'GET', '/api/v1/device/requests');
    assert.equal(device.status, 401);
    assert.ok(String(device.headers['content-security-policy']).includes("default-src 'self'"), 'the APIs get the headers too');
  });

  it('refuses a wrong password with the upstream and says so', async () => {
    const page = await newPage();
    await signIn(page, 'pat', 'not-the-password');
    await page.getByText('Wrong user name or password.').waitFor();
    assert.equal(new URL(page.url()).pathname, '/signin');
    await page.getByLabel('Password').waitFor();
  });

  it('signs in a user with no phone by password alone; sign-out ends the session for good', async () => {
    const page = await newPage();
    await signIn(page, 'pat', pw('pat'));
    await page.waitForURL('**/settings');
    await page.getByText('Signed in as pat').waitFor();
    await page.getByRole('button', { name: 'Bind a phone' }).waitFor();
    const session = (await page.context().cookies()).find((c) => c.name === '__Host-mailotp-session');
    assert.ok(session && session.httpOnly && session.secure && session.sameSite === 'Lax', 'HttpOnly; Secure; SameSite=Lax');

    await page.getByRole('button', { name: 'Sign out' }).click();
    await page.waitForURL((u) => u.pathname === '/');
    await page.getByRole('button', { name: 'Sign in' }).waitFor();
    // The old cookie, replayed by someone who kept it, is worth nothing now.
    const replay = await raw(m.portal, 'GET', '/settings', { cookie: `__Host-mailotp-session=${session.value}` });
    assert.equal(replay.status, 303);
    assert.equal(replay.headers.location, '/');
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

  it('binds a phone by the code it shows; the phone collects its token once', async () => {
    const made = await pairingApi(m.portal, 'POST', '/code', { name: 'Cody’s Pixel' });
    assert.equal(made.status, 201);
    const { code, claim } = made.json as { code: string; claim: string };
    assert.match(code, /^\d{9}$/);
    assert.equal(((await pairingApi(m.portal, 'GET', `/code/${claim}`)).json as { status: string }).status, 'waiting');

    const page = await newPage();
    await signIn(page, 'cody', pw('cody'));
    await page.waitForURL('**/settings');
    await page.getByLabel('Device verification code').fill('000 000 000');
    await page.getByRole('button', { name: 'Bind', exact: true }).click();
    await page.getByText('This code is unknown or has expired.').waitFor();
    await page.getByLabel('Device verification code').fill(`${code.slice(0, 3)} ${code.slice(3, 6)} ${code.slice(6)}`);
    await page.getByRole('button', { name: 'Bind', exact: true }).click();
    await page.getByText('Your phone is bound.').waitFor();
    assert.equal(await page.getByTestId('device-name').textContent(), 'Cody’s Pixel');

    const bound = await pairingApi(m.portal, 'GET', `/code/${claim}`);
    assert.equal(bound.status, 200);
    const { status, token, user } = bound.json as { status: string; token: string; user: string };
    assert.deepEqual([status, user], ['bound', 'cody']);
    assert.equal((await pairingApi(m.portal, 'GET', `/code/${claim}`)).status, 404, 'handed out exactly once');
    assert.equal((await deviceApi(m.portal, token, 'GET', '/api/v1/device/requests')).status, 200, 'the token works');
    await m.waitForLog((e) => e.event === 'device.bound' && e.user === 'cody');
  });

  it('binds a phone by the QR link: the desktop page moves on by itself when the right number is picked', async () => {
    const page = await newPage();
    await signIn(page, 'lina', pw('lina'));
    await page.waitForURL('**/settings');
    await page.getByRole('button', { name: 'Bind a phone' }).click();
    await page.getByRole('img', { name: 'Pairing QR code' }).waitFor();
    const link = String(await page.getByTestId('pair-link').getAttribute('href'));
    assert.match(link, /\/app\/#pair=[A-Za-z0-9_-]{43}$/);
    const secret = link.split('#pair=')[1]!;
    const number = Number(await page.getByTestId('match-number').textContent());

    const seen = await pairingApi(m.portal, 'GET', `/link/${secret}`);
    const { user, choices } = seen.json as { user: string; choices: number[] };
    assert.equal(user, 'lina');
    assert.equal(choices.length, 3);
    assert.ok(choices.includes(number));
    const answer = await pairingApi(m.portal, 'POST', `/link/${secret}`, { number, name: 'Lina’s iPhone' });
    assert.equal(answer.status, 200);
    assert.equal((answer.json as { user: string }).user, 'lina');
    await page.getByText('Your phone is bound.').waitFor();
    assert.equal(await page.getByTestId('device-name').textContent(), 'Lina’s iPhone');
    assert.equal((await pairingApi(m.portal, 'POST', `/link/${secret}`, { number })).status, 404, 'single-use');
  });

  it('voids a QR pairing when the phone picks the wrong number, and the page says so', async () => {
    const page = await newPage();
    await signIn(page, 'wren', pw('wren'));
    await page.waitForURL('**/settings');
    await page.getByRole('button', { name: 'Bind a phone' }).click();
    const secret = String(await page.getByTestId('pair-link').getAttribute('href')).split('#pair=')[1]!;
    const number = Number(await page.getByTestId('match-number').textContent());
    const { choices } = (await pairingApi(m.portal, 'GET', `/link/${secret}`)).json as { choices: number[] };
    const wrong = choices.find((c) => c !== number)!;
    const answer = await pairingApi(m.portal, 'POST', `/link/${secret}`, { number: wrong });
    assert.deepEqual(answer, { status: 409, json: { error: 'wrong-number' } });
    await page.getByText('A wrong number was picked on the phone').waitFor();
    await page.getByRole('link', { name: 'Start again' }).waitFor();
    assert.equal((await pairingApi(m.portal, 'POST', `/link/${secret}`, { number })).status, 404, 'the right number is too late');
    assert.equal((await showJson('wren')).device, null);
  });

  it('signs in with number matching: the right number lets the page move on, the phone was last used now', async () => {
    const token = await enrol(m, 'mona');
    const page = await newPage();
    await signIn(page, 'mona', pw('mona'));
    const shown = Number(await page.getByTestId('match-number').textContent());
    assert.ok(shown >= 10 && shown <= 99);
    const { request, status, json } = await pickOnPhone(m.portal, token, shown);
    assert.equal(request.type, 'login');
    assert.equal(request.protocol, 'web');
    assert.equal(request.choices?.length, 3);
    assert.ok(request.choices?.includes(shown));
    assert.ok(!('matchNumber' in request), 'the number to pick is never sent to the phone');
    assert.deepEqual({ status, json }, { status: 200, json: { status: 'approved' } });
    await page.waitForURL('**/settings');
    await page.getByText('Test phone').waitFor();
    const recent = page.getByRole('region', { name: 'Recent requests' });
    await recent.getByText('Web sign-in').waitFor();
    await recent.getByText('Approved').waitFor();
    assert.equal(await page.getByText('never').count(), 0, 'last used is set');
    assert.deepEqual((await deviceApi(m.portal, token, 'GET', '/api/v1/device/requests')).json, { requests: [] });
    const approvals = await m.cli(['approvals', 'list', '--user', 'mona', '--json']);
    assert.deepEqual((JSON.parse(approvals.stdout) as { approvals: unknown[] }).approvals, [], 'a web sign-in opens no mail approval');
  });

  it('denies the sign-in when the phone picks another number, and the page says so', async () => {
    const token = await enrol(m, 'nico');
    const page = await newPage();
    await signIn(page, 'nico', pw('nico'));
    const shown = Number(await page.getByTestId('match-number').textContent());
    const request = await waitForRequest(m.portal, token, (r) => r.type === 'login');
    const other = (request as { choices?: number[] }).choices!.find((c) => c !== shown)!;
    const answer = await deviceApi(m.portal, token, 'POST', `/api/v1/device/requests/${request.id}`, { decision: 'approve', number: other });
    assert.deepEqual(answer, { status: 200, json: { status: 'denied' } });
    await page.getByText('The sign-in was denied on your phone.').waitFor();
    await page.goto('/settings');
    await page.waitForURL((u) => u.pathname === '/');
    await page.getByRole('button', { name: 'Sign in' }).waitFor();
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

  it('clears the bound phone only after confirming; the old token stops working and other sessions end', async () => {
    const token = await enrol(m, 'mona');
    const other = await newPage();
    await signInWithPhone(other, m.portal, token, 'mona', pw('mona'));
    const page = await newPage();
    await signInWithPhone(page, m.portal, token, 'mona', pw('mona'));

    await page.getByRole('button', { name: 'Clear bound device' }).click();
    await page.getByRole('heading', { name: 'Clear the bound phone?' }).waitFor();
    assert.equal((await deviceApi(m.portal, token, 'GET', '/api/v1/device/requests')).status, 200, 'nothing changed before confirming');
    await page.getByRole('button', { name: 'Yes, clear it' }).click();
    await page.getByText('The bound phone was cleared.').waitFor();
    await page.getByRole('button', { name: 'Bind a phone' }).waitFor();
    assert.equal((await deviceApi(m.portal, token, 'GET', '/api/v1/device/requests')).status, 401);
    await m.waitForLog((e) => e.event === 'device.removed' && e.user === 'mona');

    await other.goto('/settings');
    await other.waitForURL((u) => u.pathname === '/');
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
