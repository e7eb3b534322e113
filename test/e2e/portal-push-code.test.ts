import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type { Page } from 'playwright-core';
import { portalPassword, signIn, startPortalFixture, type PortalFixture } from './browser-kit.js';
import { deviceApi, enrol, waitForRequest, type ApiRequest, type MailotpProcess } from './harness.js';

type CodeRequest = ApiRequest & { code?: string; choices?: number[] };

// A Chromium per file on a shared machine: the file may take longer than one test's limit.
describe('portal sign-in with a push code in headless Chromium (real Dovecot, real binary)', { timeout: 600_000 }, () => {
  let fx: PortalFixture;
  let m: MailotpProcess;

  before(async () => {
    fx = await startPortalFixture(['quinn', 'rosa', 'sam']);
    m = fx.m;
  });
  after(async () => {
    await fx?.close();
  });

  /** Signs in with the password, switches to the push code, and returns what the phone got. */
  const toPushCode = async (page: Page, token: string, user: string): Promise<CodeRequest> => {
    await signIn(page, user, portalPassword(user));
    const first = (await waitForRequest(m.portal, token, (r) => r.type === 'login')) as CodeRequest;
    assert.equal(first.choices?.length, 3, 'number matching comes first');
    await page.getByRole('button', { name: 'Use a code instead' }).click();
    await page.getByRole('heading', { name: 'Enter the code from your phone' }).waitFor();
    const request = (await waitForRequest(m.portal, token, (r) => r.type === 'login' && (r as CodeRequest).code !== undefined)) as CodeRequest;
    assert.match(request.code ?? '', /^[0-9]{6}$/);
    assert.ok(!('choices' in request));
    const pending = (await deviceApi(m.portal, token, 'GET', '/api/v1/device/requests')).json as { requests: CodeRequest[] };
    assert.deepEqual(pending.requests.map((r) => r.id), [request.id], 'the number-matching request was withdrawn');
    assert.ok(!(await page.content()).includes(request.code ?? 'x'), 'the page never gets the code');
    return request;
  };

  it('signs in with the code typed from the phone; a wrong one is refused and logged', async () => {
    const token = await enrol(m, 'quinn');
    const page = await fx.newPage();
    const request = await toPushCode(page, token, 'quinn');
    const wrong = request.code === '000000' ? '000001' : '000000';
    await page.getByLabel('Code').fill(wrong);
    await page.getByRole('button', { name: 'Verify' }).click();
    await page.getByText('That code is not right. Check your phone and try again.').waitFor();
    await m.waitForLog((e) => e.event === 'web.push-code-wrong' && e.user === 'quinn');
    await page.getByLabel('Code').fill(request.code ?? '');
    await page.getByRole('button', { name: 'Verify' }).click();
    await page.waitForURL('**/settings');
    await page.getByText('Signed in as quinn').waitFor();
    assert.deepEqual((await deviceApi(m.portal, token, 'GET', '/api/v1/device/requests')).json, { requests: [] });
  });

  it('signs in when the phone simply taps Yes', async () => {
    const token = await enrol(m, 'rosa');
    const page = await fx.newPage();
    const request = await toPushCode(page, token, 'rosa');
    const r = await deviceApi(m.portal, token, 'POST', `/api/v1/device/requests/${request.id}`, { decision: 'approve' });
    assert.deepEqual(r, { status: 200, json: { status: 'approved' } });
    await page.waitForURL('**/settings');
    await page.getByText('Signed in as rosa').waitFor();
  });

  it('ends the sign-in after three wrong codes: the request is gone from the phone', async () => {
    const token = await enrol(m, 'sam');
    const page = await fx.newPage();
    const request = await toPushCode(page, token, 'sam');
    const wrong = request.code === '123456' ? '654321' : '123456';
    for (let i = 0; i < 3; i++) {
      await page.getByLabel('Code').fill(wrong);
      await page.getByRole('button', { name: 'Verify' }).click();
      await page.getByText('That code is not right. Check your phone and try again.').waitFor();
    }
    await page.getByLabel('Password').waitFor();
    assert.deepEqual((await deviceApi(m.portal, token, 'GET', '/api/v1/device/requests')).json, { requests: [] });
    // The right code is worth nothing now.
    await page.goto('/');
    await page.getByRole('button', { name: 'Sign in' }).waitFor();
  });
});
