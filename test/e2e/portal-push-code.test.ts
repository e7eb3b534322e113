import assert from 'node:assert/strict';
import { mkdirSync } from 'node:fs';
import { after, before, describe, it } from 'node:test';
import { startPortalFixture, type PortalFixture } from './browser-kit.js';
import { deviceApi, enrol, type MailotpProcess } from './harness.js';
import { SHOTS, toPushCode } from './push-code-kit.js';

// A Chromium per file on a shared machine: the file may take longer than one test's limit.
describe('portal sign-in with a push code in headless Chromium (real Dovecot, real binary)', { timeout: 600_000 }, () => {
  let fx: PortalFixture;
  let m: MailotpProcess;

  before(async () => {
    mkdirSync(SHOTS, { recursive: true });
    fx = await startPortalFixture(['quinn', 'rosa', 'sam']);
    m = fx.m;
  });
  after(async () => {
    await fx?.close();
  });

  it('signs in with the code typed from the phone; a wrong one is refused and logged', async () => {
    const token = await enrol(m, 'quinn');
    const page = await fx.newPage();
    const request = await toPushCode(fx, page, token, 'quinn');
    const wrong = request.code === '000000' ? '000001' : '000000';
    await page.getByLabel('Code').fill(wrong);
    await page.getByRole('button', { name: 'Verify' }).click();
    await page.getByText('That code is not right. Check it and try again.').waitFor();
    await m.waitForLog((e) => e.event === 'web.push-code-wrong' && e.user === 'quinn');
    // Remembered, then the right code: the page's open status request learns of the approval at the
    // same moment as the form post that made it; one sign-in and one remembered browser come of it.
    const saved = page.waitForResponse((r) => r.url().endsWith('/signin/remember'));
    await page.getByLabel('Remember this browser').check();
    await saved;
    await page.waitForLoadState();
    await page.getByLabel('Code').fill(request.code ?? '');
    await page.getByRole('button', { name: 'Verify' }).click();
    await page.waitForURL('**/settings');
    await page.getByText('Signed in as quinn').waitFor();
    assert.deepEqual((await deviceApi(m.portal, token, 'GET', '/api/v1/device/requests')).json, { requests: [] });
    await page.getByTestId('remembered-browser').first().waitFor();
    await new Promise((r) => setTimeout(r, 300)); // anything the status request would still do
    assert.equal(m.events().filter((e) => e.event === 'web.signed-in' && e.user === 'quinn').length, 1);
    const shown = JSON.parse((await m.cli(['user', 'show', 'quinn', '--json'])).stdout) as { rememberedBrowsers: unknown[] };
    assert.equal(shown.rememberedBrowsers.length, 1);
    assert.equal(await page.getByTestId('remembered-browser').count(), 1);
  });

  it('signs in when the phone simply taps Yes', async () => {
    const token = await enrol(m, 'rosa');
    const page = await fx.newPage();
    const request = await toPushCode(fx, page, token, 'rosa');
    const r = await deviceApi(m.portal, token, 'POST', `/api/v1/device/requests/${request.id}`, { decision: 'approve' });
    assert.deepEqual(r, { status: 200, json: { status: 'approved' } });
    await page.waitForURL('**/settings');
    await page.getByText('Signed in as rosa').waitFor();
  });

  it('ends the sign-in after three wrong codes: the request is gone from the phone', async () => {
    const token = await enrol(m, 'sam');
    const page = await fx.newPage();
    const request = await toPushCode(fx, page, token, 'sam');
    const wrong = request.code === '123456' ? '654321' : '123456';
    for (let i = 0; i < 3; i++) {
      await page.getByLabel('Code').fill(wrong);
      await page.getByRole('button', { name: 'Verify' }).click();
      await page.getByText('That code is not right. Check it and try again.').waitFor();
    }
    await page.getByLabel('Password').waitFor();
    assert.deepEqual((await deviceApi(m.portal, token, 'GET', '/api/v1/device/requests')).json, { requests: [] });
    // The right code is worth nothing now.
    await page.goto('/');
    await page.getByRole('button', { name: 'Sign in' }).waitFor();
  });

});
