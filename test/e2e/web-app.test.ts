import assert from 'node:assert/strict';
import { createHash, X509Certificate } from 'node:crypto';
import { mkdirSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { chromium, type Browser, type BrowserContext, type Page } from 'playwright-core';
import { parseConfig } from '../../src/config/load-config.js';
import { newRequestId } from '../../src/core/tokens.js';
import type { DeviceRecord, RequestRecord } from '../../src/core/types.js';
import { silentLogger } from '../../src/log/logger.js';
import { startMailotp, type RunningMailotp } from '../../src/main.js';
import { toApiRequest } from '../../src/portal/request-view.js';
import { loadOrCreateVapidKeys } from '../../src/push/vapid-keys.js';
import { testCerts } from '../helpers/certs.js';
import { startDovecot, type DovecotHandle } from '../helpers/dovecot.js';
import { startAppPortal, type AppPortal } from './app-portal-stand-in.js';
import { imapClient, ROOT } from './harness.js';

const USERS = [
  { user: 'alice', password: 'alice-pass-1' },
  { user: 'bob', password: 'bob-pass-2' },
  { user: 'carol', password: 'carol-pass-3' },
  { user: 'dave', password: 'dave-pass-4' },
  { user: 'erin', password: 'erin-pass-5' },
];
const pw = (u: string) => USERS.find((x) => x.user === u)!.password;
/** MAILOTP_SCREENSHOTS=1 refreshes the committed pictures in docs/screenshots; otherwise they go to a temporary folder. */
const DOCS_SCREENSHOTS = join(ROOT, 'docs', 'screenshots');
const PHONE_UA = 'Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/156.0.0.0 Mobile Safari/537.36';

interface Phone {
  ctx: BrowserContext;
  page: Page;
  /** Console errors, uncaught exceptions and CSP violations seen on the page. */
  problems: string[];
}

interface ShownNotification {
  title: string;
  body: string;
  tag: string;
  actions: { action: string }[];
}
interface WorkerGlobals {
  registration: { getNotifications(filter: { tag: string }): Promise<ShownNotification[]> };
  NotificationEvent: new (type: string, init: { notification: ShownNotification | undefined; action: string }) => unknown;
  dispatchEvent(event: unknown): boolean;
}
/** The browser globals the page callbacks use: this file compiles without the DOM library. */
interface Elem {
  textContent: string | null;
  getAttribute(name: string): string | null;
}
interface PageGlobals {
  document: {
    querySelector(selector: string): Elem | null;
    createElement(tag: string): Elem;
    body: { append(node: Elem): void };
    addEventListener(type: string, listener: (e: { violatedDirective: string; blockedURI: string }) => void): void;
  };
  navigator: { serviceWorker: { ready: Promise<{ scope: string; getNotifications(): Promise<ShownNotification[]> }> } };
  mailotpDeviceStore: { save(c: { token: string; deviceId: string; user: string }): Promise<void> };
  cspViolations: string[];
  inlineRan?: boolean;
}

/** The base64 SHA-256 of the certificate's public key, which Chromium is told to trust and nothing else. */
function spkiHash(certFile: string): string {
  const der = new X509Certificate(readFileSync(certFile)).publicKey.export({ type: 'spki', format: 'der' });
  return createHash('sha256').update(der).digest('base64');
}

describe('web authenticator app in headless Chromium (phone-sized, real IMAP through mailotp to Dovecot)', () => {
  let dovecot: DovecotHandle;
  let running: RunningMailotp;
  let portal: AppPortal;
  let browser: Browser;
  let dir: string;
  let imapPort: number;
  let SCREENSHOTS: string;
  const phones: Phone[] = [];

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'mailotp-webapp-'));
    dovecot = await startDovecot({ users: USERS });
    const certs = testCerts();
    const vapidKeyFile = join(dir, 'vapid.json');
    const config = parseConfig(
      {
        listeners: [{ protocol: 'imap', host: '127.0.0.1', port: 0, tls: 'implicit' }],
        tls: { cert: certs.certFile, key: certs.keyFile },
        upstream: { imap: { host: dovecot.host, port: dovecot.ports.imaps, tls: 'implicit', ca: certs.caFile, servername: 'localhost' } },
        store: { driver: 'sqlite', path: join(dir, 'mailotp.db') },
        daemonOtp: { enforce: 'bound', holdTime: '30s', progressInterval: '1s' },
        portal: { enabled: false },
        push: { webpush: { subject: 'mailto:admin@example.com', vapidKeyFile } },
        log: { level: 'silent' },
      },
      dir,
    );
    running = await startMailotp(config, { logger: silentLogger() });
    imapPort = running.listeners[0]!.port;
    portal = await startAppPortal(running.core, silentLogger(), loadOrCreateVapidKeys(vapidKeyFile).keys.publicKey);
    browser = await chromium.launch({
      executablePath: '/usr/bin/chromium',
      args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking', `--ignore-certificate-errors-spki-list=${spkiHash(certs.certFile)}`],
    });
    SCREENSHOTS = process.env.MAILOTP_SCREENSHOTS === '1' ? DOCS_SCREENSHOTS : join(dir, 'screenshots');
    mkdirSync(SCREENSHOTS, { recursive: true });
  });

  after(async () => {
    for (const p of phones) await p.ctx.close().catch(() => undefined);
    await browser?.close();
    await portal?.close();
    await running?.stop(0);
    await dovecot?.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  async function phone(locale = 'en-US'): Promise<Phone> {
    const ctx = await browser.newContext({ viewport: { width: 390, height: 844 }, deviceScaleFactor: 2, isMobile: true, hasTouch: true, locale, userAgent: PHONE_UA });
    const page = await ctx.newPage();
    const problems: string[] = [];
    page.on('console', (m) => {
      if (m.type() === 'error') problems.push(`console: ${m.text()}`);
    });
    page.on('pageerror', (e) => problems.push(`pageerror: ${e.message}`));
    await page.addInitScript(() => {
      const w = globalThis as unknown as PageGlobals;
      w.cspViolations = [];
      w.document.addEventListener('securitypolicyviolation', (e) => w.cspViolations.push(`${e.violatedDirective} ${e.blockedURI}`));
    });
    const p = { ctx, page, problems };
    phones.push(p);
    return p;
  }

  /** Binds a device as `mailotp device add` does and puts its token where the app keeps it. */
  async function pairedPhone(user: string, locale?: string): Promise<Phone & { device: DeviceRecord; token: string }> {
    const bound = await running.core.devices.bind(user, 'Pixel 8 (web app)', true);
    assert.equal(bound.status, 'bound');
    if (bound.status !== 'bound') throw new Error('not bound');
    const p = await phone(locale);
    await p.page.goto(`${portal.origin}/app/`);
    await p.page.waitForFunction(() => 'mailotpDeviceStore' in globalThis);
    await p.page.evaluate(
      (creds) => (globalThis as unknown as PageGlobals).mailotpDeviceStore.save(creds),
      { token: bound.token, deviceId: bound.device.deviceId, user },
    );
    await p.page.reload();
    await p.page.locator('#live', { hasText: /Live|即時/ }).waitFor();
    return { ...p, device: bound.device, token: bound.token };
  }

  /** Stands in for RequestService.openLogin (portal sign-in, helper 10a): a login request with three numbers. */
  async function openLoginRequest(device: DeviceRecord, clientIp: string, choices: number[], matchNumber: number): Promise<RequestRecord> {
    const now = running.core.clock.now();
    const candidate: RequestRecord = {
      id: newRequestId(),
      type: 'login',
      user: device.user,
      deviceId: device.deviceId,
      protocol: 'web',
      clientIp,
      createdAt: now,
      expiresAt: now + 300_000,
      status: 'pending',
      choices,
      matchNumber,
    };
    const { request } = await running.core.store.createRequest(candidate, now);
    await running.core.store.appendEvent({ type: 'request.opened', request }, now, running.core.requests.eventRetentionMs);
    return request;
  }

  function item(page: Page, text: RegExp | string) {
    return page.getByRole('listitem').filter({ hasText: text });
  }

  it('unpaired: shows its device verification code, and is paired once the code is entered on the desktop', async () => {
    const { page, problems } = await phone();
    await page.goto(`${portal.origin}/app/`);
    const code = page.getByTestId('device-code');
    await code.waitFor();
    await page.waitForFunction(() => /^\d{3} \d{3} \d{3}$/.test((globalThis as unknown as PageGlobals).document.querySelector('[data-testid="device-code"]')?.textContent ?? ''));
    const shown = (await code.textContent()) ?? '';
    await page.screenshot({ path: join(SCREENSHOTS, 'app-unpaired-code.png') });
    assert.equal(await portal.enterCode(shown, 'alice'), 'bound');
    await page.getByText('Approving for alice').waitFor({ timeout: 10_000 });
    await page.getByText('This phone is paired.').waitFor();
    assert.deepEqual(problems, []);
  });

  it('link flow: #pair=<secret> shows three numbers as buttons; the matching one pairs, another voids the link', async () => {
    await running.core.devices.remove('bob');
    const wrong = portal.createLink('bob');
    const a = await phone();
    await a.page.goto(`${portal.origin}/app/#pair=${wrong.secret}`);
    for (const n of wrong.choices) await a.page.getByRole('button', { name: String(n), exact: true }).waitFor();
    const other = wrong.choices.find((n) => n !== wrong.number)!;
    await a.page.getByRole('button', { name: String(other), exact: true }).click();
    await a.page.getByRole('alert').filter({ hasText: 'pairing was cancelled' }).waitFor();
    assert.equal(await running.core.store.getDeviceByUser('bob'), null);

    const right = portal.createLink('bob');
    const b = await phone();
    await b.page.goto(`${portal.origin}/app/#pair=${right.secret}`);
    await b.page.getByText('Pairing this phone for bob').waitFor();
    await b.page.getByRole('button', { name: String(right.number), exact: true }).click();
    await b.page.getByText('Approving for bob').waitFor();
    assert.ok(await running.core.store.getDeviceByUser('bob'));
    assert.equal(new URL(b.page.url()).hash, '', 'the pairing secret leaves the address bar');
  });

  it('holds an IMAP login until Approve is tapped, then lists and revokes the approved connection', async () => {
    const { page, problems } = await pairedPhone('carol');
    const client = imapClient(imapPort, 'carol', pw('carol'), { localAddress: '127.0.0.21' });
    let settled = false;
    const login = client.connect().then(
      () => 'ok',
      (e: { serverResponseCode?: string }) => e.serverResponseCode ?? 'error',
    ).finally(() => (settled = true));
    const li = item(page, /on IMAP from 127\.0\.0\.21/);
    await li.waitFor({ timeout: 10_000 });
    assert.match((await li.textContent()) ?? '', /just now|min ago/);
    await page.screenshot({ path: join(SCREENSHOTS, 'app-paired-requests.png') });
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
    assert.deepEqual(await running.core.approvals.list('carol'), []);
    assert.deepEqual(problems, []);
  });

  it('Deny refuses the held login; the list follows requests opened and settled elsewhere, live', async () => {
    const { page, device, problems } = await pairedPhone('dave');
    const client = imapClient(imapPort, 'dave', pw('dave'), { localAddress: '127.0.0.22' });
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
    const { request } = await running.core.requests.openConnection({ user: 'dave', device, protocol: 'pop3', clientIp: '198.51.100.23', clientName: 'Thunderbird' });
    const live = item(page, 'Thunderbird on POP3 from 198.51.100.23');
    await live.waitFor();
    await running.core.requests.decide(device.deviceId, request.id, 'deny');
    await live.waitFor({ state: 'detached' });
    assert.deepEqual(problems, []);
  });

  it('number matching: a login request shows one button per number instead of Approve', async () => {
    const { page, device } = await pairedPhone('erin');
    const request = await openLoginRequest(device, '203.0.113.7', [23, 58, 71], 58);
    const li = item(page, 'Web sign-in from 203.0.113.7');
    await li.waitFor();
    for (const n of [23, 58, 71]) await li.getByRole('button', { name: String(n), exact: true }).waitFor();
    assert.equal(await li.getByRole('button', { name: 'Approve', exact: true }).count(), 0);
    await li.getByRole('button', { name: 'Deny', exact: true }).waitFor();
    await page.screenshot({ path: join(SCREENSHOTS, 'app-number-matching.png') });
    await li.getByRole('button', { name: '58', exact: true }).click();
    await li.waitFor({ state: 'detached' });
    assert.equal((await running.core.store.getRequest(request.id, running.core.clock.now()))?.status, 'approved');
  });

  it('"This wasn\'t me" sends the report decision and shows what the server answered', async () => {
    const { page, device } = await pairedPhone('erin');
    await running.core.requests.openConnection({ user: 'erin', device, protocol: 'smtp', clientIp: '192.0.2.66', clientName: 'Outlook' });
    const li = item(page, 'Outlook on SMTP from 192.0.2.66');
    await li.getByRole('button', { name: 'This wasn’t me', exact: true }).click();
    // Before the core knows "report" the server refuses it (400), which the page must say;
    // once it does, the request is reported and denied.
    const outcome = await Promise.race([
      page.getByRole('alert').filter({ hasText: 'The server refused this' }).waitFor().then(() => 'refused'),
      page.getByRole('status').filter({ hasText: 'Reported and denied.' }).waitFor().then(() => 'reported'),
    ]);
    if (outcome === 'refused') assert.equal(await li.count(), 1, 'the request stays to be answered');
    else assert.equal(await li.count(), 0);
  });

  it('unbound remotely (mailotp device remove): a clear "no longer bound" state, and the token is forgotten', async () => {
    const { page } = await pairedPhone('alice');
    await running.core.devices.remove('alice');
    await page.reload();
    await page.getByRole('heading', { name: 'This phone is no longer bound' }).waitFor();
    await page.reload();
    await page.getByTestId('device-code').waitFor();
    await page.waitForFunction(() => /\d{3} \d{3} \d{3}/.test((globalThis as unknown as PageGlobals).document.querySelector('[data-testid="device-code"]')?.textContent ?? ''));
  });

  it('speaks Traditional Chinese to a zh-TW phone, and ?lang=en overrides it', async () => {
    const { page, device } = await pairedPhone('bob', 'zh-TW');
    await running.core.requests.openConnection({ user: 'bob', device, protocol: 'imap', clientIp: '198.51.100.99', clientName: 'Thunderbird' });
    const li = item(page, 'Thunderbird 透過 IMAP 從 198.51.100.99 連線');
    for (const name of ['核准', '拒絕', '這不是我']) await li.getByRole('button', { name, exact: true }).waitFor();
    await page.getByRole('heading', { name: '等待您處理' }).waitFor();
    assert.equal(await page.getAttribute('html', 'lang'), 'zh-TW');
    await page.screenshot({ path: join(SCREENSHOTS, 'app-paired-zh-TW.png') });
    await page.goto(`${portal.origin}/app/?lang=en`);
    await item(page, 'Thunderbird on IMAP from 198.51.100.99').getByRole('button', { name: 'Approve', exact: true }).waitFor();
  });

  it('runs under the strict CSP with no console errors; the manifest and the service worker register', async () => {
    const { page, problems } = await pairedPhone('carol');
    const response = await page.goto(`${portal.origin}/app/`);
    const csp = (await response?.allHeaders())?.['content-security-policy'] ?? '';
    assert.match(csp, /script-src 'self'/);
    assert.equal(csp.includes('unsafe-inline'), false);
    await page.locator('#live', { hasText: 'Live' }).waitFor();
    const scope = await page.evaluate(async () => (await (globalThis as unknown as PageGlobals).navigator.serviceWorker.ready).scope);
    assert.equal(scope, `${portal.origin}/app/`);
    const manifest = await page.evaluate(async () => {
      const href = (globalThis as unknown as PageGlobals).document.querySelector('link[rel="manifest"]')?.getAttribute('href') ?? '';
      const res = await fetch(href);
      return { type: res.headers.get('content-type'), body: (await res.json()) as { start_url: string; scope: string; icons: unknown[] } };
    });
    assert.match(manifest.type ?? '', /manifest\+json/);
    assert.equal(manifest.body.start_url, '/app/');
    assert.equal(manifest.body.icons.length, 4);
    assert.deepEqual(await page.evaluate(() => (globalThis as unknown as PageGlobals).cspViolations), []);
    assert.deepEqual(problems, []);
    // The policy is really in force: an inline script is refused (and reported).
    await page.evaluate(() => {
      const d = (globalThis as unknown as PageGlobals).document;
      const s = d.createElement('script');
      s.textContent = 'globalThis.inlineRan = true';
      d.body.append(s);
    });
    assert.equal(await page.evaluate(() => 'inlineRan' in globalThis), false);
    await page.waitForFunction(() => (globalThis as unknown as PageGlobals).cspViolations.length > 0);
  });

  it('service worker: a pushed request shows a notification with Approve and Deny that answer it; "close" closes it', async () => {
    const { ctx, page, device } = await pairedPhone('dave');
    await ctx.grantPermissions(['notifications'], { origin: portal.origin });
    await page.evaluate(async () => (globalThis as unknown as PageGlobals).navigator.serviceWorker.ready);
    const worker = ctx.serviceWorkers().find((w) => w.url().endsWith('/app/sw.js')) ?? (await ctx.waitForEvent('serviceworker'));
    const cdp = await ctx.newCDPSession(page);
    const registrations = new Map<string, string>();
    cdp.on('ServiceWorker.workerRegistrationUpdated', (e: { registrations: { registrationId: string; scopeURL: string }[] }) => {
      for (const r of e.registrations) registrations.set(r.scopeURL, r.registrationId);
    });
    await cdp.send('ServiceWorker.enable');
    const end = Date.now() + 5000;
    while (!registrations.has(`${portal.origin}/app/`)) {
      assert.ok(Date.now() < end, 'no service worker registration reported');
      await new Promise((r) => setTimeout(r, 20));
    }
    const registrationId = registrations.get(`${portal.origin}/app/`)!;
    /** What the browser hands the worker after decrypting a Web Push message (the payload of WebPushNotifier). */
    const deliver = (payload: unknown) => cdp.send('ServiceWorker.deliverPushMessage', { origin: portal.origin, registrationId, data: JSON.stringify(payload) });
    const shown = () =>
      page.evaluate(async () => {
        const reg = await (globalThis as unknown as PageGlobals).navigator.serviceWorker.ready;
        const list = await reg.getNotifications();
        return list.map((n) => ({ title: n.title, body: n.body, tag: n.tag, actions: n.actions.map((a) => a.action) }));
      });
    const waitShown = async (pred: (list: Awaited<ReturnType<typeof shown>>) => boolean) => {
      const until = Date.now() + 5000;
      for (;;) {
        const list = await shown();
        if (pred(list)) return list;
        assert.ok(Date.now() < until, `notifications: ${JSON.stringify(list)}`);
        await new Promise((r) => setTimeout(r, 50));
      }
    };

    const { request } = await running.core.requests.openConnection({ user: 'dave', device, protocol: 'imap', clientIp: '198.51.100.40', clientName: 'Thunderbird' });
    await deliver({ kind: 'request', request: toApiRequest(request), text: 'Thunderbird on IMAP from 198.51.100.40' });
    const [n] = await waitShown((l) => l.some((x) => x.tag === `request-${request.id}`));
    assert.deepEqual(n, { title: 'Approve this sign-in?', body: 'Thunderbird on IMAP from 198.51.100.40', tag: `request-${request.id}`, actions: ['approve', 'deny'] });

    // Tapping "Approve" on the notification: the worker answers with the token from IndexedDB.
    await worker.evaluate(async (tag) => {
      const sw = globalThis as unknown as WorkerGlobals;
      const [note] = await sw.registration.getNotifications({ tag });
      sw.dispatchEvent(new sw.NotificationEvent('notificationclick', { notification: note, action: 'approve' }));
    }, `request-${request.id}`);
    const until = Date.now() + 5000;
    while ((await running.core.store.getRequest(request.id, running.core.clock.now()))?.status !== 'approved') {
      assert.ok(Date.now() < until, 'the notification action did not approve the request');
      await new Promise((r) => setTimeout(r, 50));
    }

    // A number-matching request: no actions, a tap opens the app; "close" takes it away.
    const login = await openLoginRequest(device, '203.0.113.8', [31, 64, 92], 64);
    await deliver({ kind: 'request', request: toApiRequest(login), text: 'Web sign-in from 203.0.113.8' });
    const [m] = await waitShown((l) => l.some((x) => x.tag === `request-${login.id}`));
    assert.deepEqual(m?.actions, []);
    assert.equal(m?.body, 'Web sign-in from 203.0.113.8. Open the app to pick the number.');
    await deliver({ kind: 'close', id: login.id, status: 'denied' });
    await waitShown((l) => !l.some((x) => x.tag === `request-${login.id}`));
  });
});
