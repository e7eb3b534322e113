import assert from 'node:assert/strict';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { imapClient } from './harness.js';
import { item, pw, startWebAppBed, type PageGlobals, type WebAppBed } from './web-app-kit.js';

describe('web authenticator app in headless Chromium: pairing, IMAP logins held for the tap, number matching (phone-sized, real Dovecot)', () => {
  let bed: WebAppBed;

  before(async () => {
    bed = await startWebAppBed();
  });

  after(async () => {
    await bed?.stop();
  });
  it('unpaired: shows its device verification code, and is paired once the code is entered on the desktop', async () => {
    const { page, problems } = await bed.phone();
    await page.goto(`${bed.portal.origin}/app/`);
    const code = page.getByTestId('device-code');
    await code.waitFor();
    await page.waitForFunction(() => /^\d{3} \d{3} \d{3}$/.test((globalThis as typeof globalThis & PageGlobals).document.querySelector('[data-testid="device-code"]')?.textContent ?? ''));
    const shown = (await code.textContent()) ?? '';
    await page.screenshot({ path: join(bed.screenshots, 'app-unpaired-code.png') });
    assert.equal(await bed.portal.enterCode(shown, 'alice'), 'bound');
    await page.getByText('Approving for alice').waitFor({ timeout: 10_000 });
    await page.getByText('This phone is paired.').waitFor();
    assert.deepEqual(problems, []);
  });

  it('link flow: #pair=<secret> shows three numbers as buttons; the matching one pairs, another voids the link', async () => {
    await bed.running.core.devices.remove('bob');
    const wrong = bed.portal.createLink('bob');
    const a = await bed.phone();
    await a.page.goto(`${bed.portal.origin}/app/#pair=${wrong.secret}`);
    for (const n of wrong.choices) await a.page.getByRole('button', { name: String(n), exact: true }).waitFor();
    const other = wrong.choices.find((n) => n !== wrong.number)!;
    await a.page.getByRole('button', { name: String(other), exact: true }).click();
    await a.page.getByRole('alert').filter({ hasText: 'pairing was cancelled' }).waitFor();
    assert.equal(await bed.running.core.store.getDeviceByUser('bob'), null);

    const right = bed.portal.createLink('bob');
    const b = await bed.phone();
    await b.page.goto(`${bed.portal.origin}/app/#pair=${right.secret}`);
    await b.page.getByText('Pairing this phone for bob').waitFor();
    await b.page.getByRole('button', { name: String(right.number), exact: true }).click();
    await b.page.getByText('Approving for bob').waitFor();
    assert.ok(await bed.running.core.store.getDeviceByUser('bob'));
    assert.equal(new URL(b.page.url()).hash, '', 'the pairing secret leaves the address bar');
  });

  it('holds an IMAP login until Approve is tapped, then lists and revokes the approved connection', async () => {
    const { page, problems } = await bed.pairedPhone('carol');
    const client = imapClient(bed.imapPort, 'carol', pw('carol'), { localAddress: '127.0.0.21' });
    let settled = false;
    const login = client.connect().then(
      () => 'ok',
      (e: { serverResponseCode?: string }) => e.serverResponseCode ?? 'error',
    ).finally(() => (settled = true));
    const li = item(page, /on IMAP from 127\.0\.0\.21/);
    await li.waitFor({ timeout: 10_000 });
    assert.match((await li.textContent()) ?? '', /just now|min ago/);
    await page.screenshot({ path: join(bed.screenshots, 'app-paired-requests.png') });
    assert.equal(settled, false, 'the login waits for the tap');
    await li.getByRole('button', { name: 'Approve', exact: true }).click();
    assert.equal(await login, 'ok');
    await page.getByRole('status').filter({ hasText: 'Approved.' }).waitFor();
    await li.waitFor({ state: 'detached' });
    await client.logout();

    const row = page.locator('#approvals li', { hasText: '127.0.0.21' });
    await row.waitFor();
    await row.getByRole('button', { name: 'Revoke' }).click();
    await row.waitFor({ state: 'detached' });
    assert.deepEqual(await bed.running.core.approvals.list('carol'), []);
    assert.deepEqual(problems, []);
  });

  it('Deny refuses the held login; the list follows requests opened and settled elsewhere, live', async () => {
    const { page, device, token, problems } = await bed.pairedPhone('dave');
    const client = imapClient(bed.imapPort, 'dave', pw('dave'), { localAddress: '127.0.0.22' });
    const login = client.connect().then(
      () => 'ok',
      (e: { serverResponseCode?: string }) => e.serverResponseCode ?? 'error',
    );
    const li = item(page, /on IMAP from 127\.0\.0\.22/);
    await li.getByRole('button', { name: 'Deny', exact: true }).click();
    assert.equal(await login, 'AUTHENTICATIONFAILED');
    await li.waitFor({ state: 'detached' });
    client.close();

    // Opened by the core (as another instance would), then answered elsewhere: no reload needed.
    const { request } = await bed.running.core.requests.openConnection({ user: 'dave', device, protocol: 'pop3', clientIp: '198.51.100.23', clientName: 'Thunderbird' });
    const live = item(page, 'Thunderbird on POP3 from 198.51.100.23');
    await live.waitFor();
    await bed.running.core.requests.decide(device.deviceId, request.id, 'deny');
    await live.waitFor({ state: 'detached' });

    // The stream drops: meanwhile the list comes from GET /requests, then the app reconnects with
    // Last-Event-ID and the stream carries on (a request settled while it was away goes too).
    const before = bed.portal.streamRequests.length;
    bed.portal.endStreams();
    const { request: missed } = await bed.running.core.requests.openConnection({ user: 'dave', device, protocol: 'imap', clientIp: '198.51.100.24', clientName: 'Evolution' });
    const evolution = item(page, 'Evolution on IMAP from 198.51.100.24');
    await evolution.waitFor({ timeout: 15_000 });
    await bed.running.core.requests.decide(device.deviceId, missed.id, 'deny');
    await evolution.waitFor({ state: 'detached', timeout: 15_000 });
    await page.locator('#live', { hasText: 'Live' }).waitFor();
    const resumed = bed.portal.streamRequests.slice(before).filter((r) => r.token === token).map((r) => r.lastEventId);
    assert.ok(resumed.length > 0 && resumed.every((id) => /^\d+$/.test(id)), `reconnects sent Last-Event-ID: ${JSON.stringify(resumed)}`);
    assert.deepEqual(problems, []);
  });

  it('number matching: a login request shows one button per number instead of Approve', async () => {
    const { page, device } = await bed.pairedPhone('erin');
    const request = await bed.openLoginRequest(device, '203.0.113.7', [23, 58, 71], 58);
    const li = item(page, 'Web sign-in from 203.0.113.7');
    await li.waitFor();
    for (const n of [23, 58, 71]) await li.getByRole('button', { name: String(n), exact: true }).waitFor();
    assert.equal(await li.getByRole('button', { name: 'Approve', exact: true }).count(), 0);
    await li.getByRole('button', { name: 'Deny', exact: true }).waitFor();
    await page.screenshot({ path: join(bed.screenshots, 'app-number-matching.png') });
    await li.getByRole('button', { name: '58', exact: true }).click();
    await li.waitFor({ state: 'detached' });
    assert.equal((await bed.running.core.store.getRequest(request.id, bed.running.core.clock.now()))?.status, 'approved');
  });
});
