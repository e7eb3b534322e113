import assert from 'node:assert/strict';
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { PHONE, portalContext, startPortalFixture, type PortalFixture } from './browser-kit.js';
import type { MailotpProcess } from './harness.js';
import { appOnPhone, SHOTS, toPushCode } from './push-code-kit.js';

// A Chromium per file on a shared machine: the file may take longer than one test's limit.
describe('push code side by side: desktop sign-in and the web app at /app on a phone (real Dovecot, real binary)', { timeout: 600_000 }, () => {
  let fx: PortalFixture;
  let m: MailotpProcess;

  before(async () => {
    mkdirSync(SHOTS, { recursive: true });
    fx = await startPortalFixture(['tess', 'uma']);
    m = fx.m;
  });
  after(async () => {
    await fx?.close();
  });

  it('side by side: the web app shows the code with Yes; typing it on the desktop signs in', async () => {
    const { page: phone, token } = await appOnPhone(fx, 'tess');
    const desk = await fx.newPage();
    await toPushCode(fx, desk, token, 'tess');
    const shown = phone.getByTestId('push-code');
    await shown.waitFor();
    const code = (await shown.textContent()) ?? '';
    assert.match(code, /^[0-9]{6}$/);
    await phone.getByRole('button', { name: 'Yes', exact: true }).waitFor();
    await phone.getByRole('button', { name: 'Deny', exact: true }).waitFor();
    await phone.screenshot({ path: join(SHOTS, 'app-push-code.png') });
    await desk.screenshot({ path: join(SHOTS, 'sign-in-push-code-desktop.png') });
    await desk.getByLabel('Code').fill(code);
    await desk.getByRole('button', { name: 'Verify' }).click();
    await desk.waitForURL('**/settings');
    await desk.getByText('Signed in as tess').waitFor();
    await shown.waitFor({ state: 'detached' });
  });

  it('side by side: tapping Yes in the web app signs the desktop in', async () => {
    const { page: phone, token } = await appOnPhone(fx, 'uma');
    const ctx = await portalContext(fx.browser, m.portal, { viewport: PHONE });
    const small = await ctx.newPage();
    await toPushCode(fx, small, token, 'uma');
    await small.screenshot({ path: join(SHOTS, 'sign-in-push-code-phone.png') });
    await phone.getByTestId('push-code').waitFor();
    await phone.getByRole('button', { name: 'Yes', exact: true }).click();
    await small.waitForURL('**/settings');
    await small.getByText('Signed in as uma').waitFor();
    await ctx.close();
  });
});
