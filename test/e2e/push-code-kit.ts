/** The push-code sign-in's test steps: the desktop's switch to a code, and the web app on a phone. */
import assert from 'node:assert/strict';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Page } from 'playwright-core';
import { openPairedApp, PHONE, portalContext, portalPassword, signIn, type PortalFixture } from './browser-kit.js';
import { deviceApi, ROOT, waitForRequest, type ApiRequest } from './harness.js';

export type CodeRequest = ApiRequest & { code?: string; choices?: number[] };

/** MAILOTP_SCREENSHOTS=1 refreshes the committed pictures in docs/screenshots. */
export const SHOTS = process.env.MAILOTP_SCREENSHOTS === '1' ? join(ROOT, 'docs', 'screenshots') : join(tmpdir(), 'mailotp-push-code-shots');

/** Signs in with the password, switches to the push code, and returns what the phone got. */
export async function toPushCode(fx: PortalFixture, page: Page, token: string, user: string): Promise<CodeRequest> {
  const m = fx.m;
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
}

/** The web app at /app on a phone-sized page, holding this device's credentials. */
export async function appOnPhone(fx: PortalFixture, user: string): Promise<{ page: Page; token: string }> {
  const m = fx.m;
  const add = await m.cli(['device', 'add', user, '--name', 'Pixel 8 (web app)', '--json', '--replace']);
  const { token, deviceId } = JSON.parse(add.stdout) as { token: string; deviceId: string };
  const ctx = await portalContext(fx.browser, m.portal, { viewport: PHONE });
  const page = await ctx.newPage();
  await openPairedApp(page, { token, deviceId, user });
  return { page, token };
}
