/** Headless Chromium (Debian's) for the portal tests, and the phone's side driven through the APIs. */
import { createHash, X509Certificate } from 'node:crypto';
import { readFileSync } from 'node:fs';
import https from 'node:https';
import { chromium, type Browser, type BrowserContext, type Page } from 'playwright-core';
import { testCerts } from '../helpers/certs.js';
import { startDovecot, type DovecotHandle } from '../helpers/dovecot.js';
import { deviceApi, startMailotp, waitForRequest, type ApiRequest, type MailotpOptions, type MailotpProcess } from './harness.js';

export const CHROMIUM = '/usr/bin/chromium';

/** The base64 SHA-256 of the certificate's public key, which Chromium is told to trust and nothing else. */
export function spkiHash(certFile: string): string {
  const der = new X509Certificate(readFileSync(certFile)).publicKey.export({ type: 'spki', format: 'der' });
  return createHash('sha256').update(der).digest('base64');
}

/** Chromium that trusts the test certificate everywhere, service worker scripts included
 * (a context's ignoreHTTPSErrors does not reach those). */
export function launchChromium(): Promise<Browser> {
  return chromium.launch({
    executablePath: CHROMIUM,
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking', `--ignore-certificate-errors-spki-list=${spkiHash(testCerts().certFile)}`],
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

/** Opens the web app at /app holding this device's credentials, as a paired phone would. */
export async function openPairedApp(page: Page, creds: { token: string; deviceId: string; user: string }): Promise<void> {
  await page.goto('/app/');
  await page.waitForFunction(() => 'mailotpDeviceStore' in globalThis);
  await page.evaluate((c) => (globalThis as typeof globalThis & { mailotpDeviceStore: { save(c: unknown): Promise<void> } }).mailotpDeviceStore.save(c), creds);
  await page.reload();
}

/** The session cookie of the page's browser context, as a Cookie header. */
export async function cookieOf(page: Page): Promise<string> {
  const c = (await page.context().cookies()).find((x) => x.name === '__Host-mailotp-session');
  if (!c) throw new Error('the sign-in set no session cookie');
  return `${c.name}=${c.value}`;
}

/** Resolves with the response, and says meanwhile whether it has come. */
export function watched<T>(p: Promise<T>): { done: () => boolean; result: Promise<T> } {
  let settled = false;
  const result = p.finally(() => (settled = true));
  return { done: () => settled, result };
}

/**
 * Takes the page's session and sends its status request with `?wait=1` itself (the page goes to
 * about:blank, and its own held request with it); checks that the request is still open 800 ms on.
 */
export async function heldStatus(page: Page, port: number, path: string): Promise<{ cookie: string; held: { done: () => boolean; result: Promise<Awaited<ReturnType<typeof raw>>> } }> {
  const cookie = await cookieOf(page);
  await page.goto('about:blank');
  await new Promise((r) => setTimeout(r, 200));
  const held = watched(raw(port, 'GET', `${path}?wait=1`, { cookie, accept: 'application/json' }));
  await new Promise((r) => setTimeout(r, 800));
  if (held.done()) throw new Error(`${path}?wait=1 was answered with nothing to wait for`);
  return { cookie, held };
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

export interface PortalFixture {
  m: MailotpProcess;
  dovecot: DovecotHandle;
  browser: Browser;
  /** A fresh desktop-sized browser context (its own cookies) and a page in it. */
  newPage(opts?: { locale?: string }): Promise<Page>;
  /** `mailotp user show USER --json`. */
  showUser(user: string): Promise<{ device: unknown; daemonOtp: boolean; methods?: string[]; defaultMethod?: string | null }>;
  close(): Promise<void>;
}

/** Dovecot with these users (password `${user}-pw-1`), the real mailotp binary, and Chromium. */
export async function startPortalFixture(users: readonly string[], publicUrl = 'https://localhost:0', portal: Record<string, unknown> = {}, more: Pick<MailotpOptions, 'limits'> = {}): Promise<PortalFixture> {
  const dovecot = await startDovecot({ users: users.map((user) => ({ user, password: portalPassword(user) })) });
  const contexts: BrowserContext[] = [];
  let m: MailotpProcess | undefined;
  let browser: Browser | undefined;
  const close = async () => {
    for (const c of contexts) await c.close().catch(() => undefined);
    await browser?.close();
    await m?.stop();
    await dovecot.stop();
  };
  try {
    m = await startMailotp({ dovecot, portal: { publicUrl, ...portal }, ...more });
    browser = await launchChromium();
  } catch (err) {
    await close();
    throw err;
  }
  const [mm, bb] = [m, browser];
  return {
    m: mm,
    dovecot,
    browser: bb,
    async newPage(opts = {}) {
      const ctx = await portalContext(bb, mm.portal, opts);
      contexts.push(ctx);
      return ctx.newPage();
    },
    async showUser(user) {
      const r = await mm.cli(['user', 'show', user, '--json']);
      if (r.code !== 0) throw new Error(`user show failed: ${r.stderr}`);
      return JSON.parse(r.stdout) as { device: unknown; daemonOtp: boolean };
    },
    close,
  };
}

export const portalPassword = (user: string): string => `${user}-pw-1`;

/** A raw HTTPS request to the portal (no browser): for headers and what a forged form post gets. */
export function raw(port: number, method: string, path: string, headers: Record<string, string> = {}, body?: string): Promise<{ status: number; headers: Record<string, string | string[] | undefined>; text: string }> {
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

