/** Headless Chromium (Debian's) for the portal tests, and the phone's side driven through the APIs. */
import { chromium, type Browser, type BrowserContext, type Page } from 'playwright-core';
import { deviceApi, waitForRequest, type ApiRequest } from './harness.js';

export const CHROMIUM = '/usr/bin/chromium';

export function launchChromium(): Promise<Browser> {
  return chromium.launch({
    executablePath: CHROMIUM,
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking'],
  });
}

export const DESKTOP = { width: 1280, height: 900 };
export const PHONE = { width: 360, height: 740 };

/** A browser context on the portal, which serves the test CA's localhost certificate. */
export function portalContext(browser: Browser, port: number, opts: { viewport?: { width: number; height: number }; locale?: string } = {}): Promise<BrowserContext> {
  return browser.newContext({
    baseURL: `https://localhost:${port}`,
    ignoreHTTPSErrors: true,
    viewport: opts.viewport ?? DESKTOP,
    locale: opts.locale ?? 'en-US',
    ...(opts.viewport === PHONE ? { isMobile: true, hasTouch: true, deviceScaleFactor: 2 } : {}),
  });
}

/** Fills the sign-in form and submits it. */
export async function signIn(page: Page, user: string, password: string): Promise<void> {
  await page.goto('/');
  await page.getByLabel('User name').fill(user);
  await page.getByLabel('Password').fill(password);
  await page.getByRole('button', { name: 'Sign in' }).click();
}

/** The phone's part of number matching: finds the login request and picks a number. */
export async function pickOnPhone(port: number, token: string, number: number): Promise<{ request: ApiRequest & { choices?: number[] }; status: number; json: unknown }> {
  const request = (await waitForRequest(port, token, (r) => r.type === 'login')) as ApiRequest & { choices?: number[] };
  const r = await deviceApi(port, token, 'POST', `/api/v1/device/requests/${request.id}`, { decision: 'approve', number });
  return { request, ...r };
}

/** Signs in a user who has a bound phone, approving with the number the page shows. */
export async function signInWithPhone(page: Page, port: number, token: string, user: string, password: string): Promise<void> {
  await signIn(page, user, password);
  const shown = Number(await page.getByTestId('match-number').textContent());
  const { status } = await pickOnPhone(port, token, shown);
  if (status !== 200) throw new Error(`phone approval answered ${status}`);
  await page.waitForURL('**/settings');
}

/** The JSON pairing API as the phone calls it. */
export function pairingApi(port: number, method: string, path: string, body?: unknown): Promise<{ status: number; json: unknown }> {
  return deviceApi(port, null, method, `/api/v1/pairing${path}`, body);
}
