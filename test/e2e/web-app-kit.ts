/** The web authenticator app's browser test bed: mailotp in-process in front of a private Dovecot,
 * the app's portal stand-in (strict CSP), and headless Chromium with phone-sized contexts. */
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { chromium, type BrowserContext, type Page } from 'playwright-core';
import { parseConfig } from '../../src/config/load-config.js';
import { newRequestId } from '../../src/core/tokens.js';
import type { DeviceRecord, RequestRecord } from '../../src/core/types.js';
import { silentLogger } from '../../src/log/logger.js';
import { startMailotp, type RunningMailotp } from '../../src/main.js';
import { loadOrCreateVapidKeys } from '../../src/push/vapid-keys.js';
import { testCerts } from '../helpers/certs.js';
import { startDovecot } from '../helpers/dovecot.js';
import { spkiHash } from './browser-kit.js';
import { startAppPortal, type AppPortal } from './app-portal-stand-in.js';
import { ROOT } from './harness.js';

export const USERS = [
  { user: 'alice', password: 'alice-pass-1' },
  { user: 'bob', password: 'bob-pass-2' },
  { user: 'carol', password: 'carol-pass-3' },
  { user: 'dave', password: 'dave-pass-4' },
  { user: 'erin', password: 'erin-pass-5' },
];
export const pw = (u: string) => USERS.find((x) => x.user === u)!.password;
/** MAILOTP_SCREENSHOTS=1 refreshes the committed pictures in docs/screenshots; otherwise they go to a temporary folder. */
const DOCS_SCREENSHOTS = join(ROOT, 'docs', 'screenshots');
const PHONE_UA = 'Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/156.0.0.0 Mobile Safari/537.36';

export interface Phone {
  ctx: BrowserContext;
  page: Page;
  /** Console errors, uncaught exceptions and CSP violations seen on the page. */
  problems: string[];
}

export interface ShownNotification {
  title: string;
  body: string;
  tag: string;
  actions: { action: string }[];
}
export interface WorkerGlobals {
  registration: { getNotifications(filter: { tag: string }): Promise<ShownNotification[]> };
  NotificationEvent: new (type: string, init: { notification: ShownNotification | undefined; action: string }) => unknown;
  dispatchEvent(event: unknown): boolean;
}
/** The browser globals the page callbacks use: this file compiles without the DOM library. */
interface Elem {
  textContent: string | null;
  getAttribute(name: string): string | null;
}
export interface PageGlobals {
  document: {
    querySelector(selector: string): Elem | null;
    createElement(tag: string): Elem;
    body: { append(node: Elem): void };
    documentElement: { scrollWidth: number; clientWidth: number };
    addEventListener(type: string, listener: (e: { violatedDirective: string; blockedURI: string }) => void): void;
  };
  navigator: { serviceWorker: { ready: Promise<{ scope: string; getNotifications(): Promise<ShownNotification[]> }> } };
  mailotpDeviceStore: { save(c: { token: string; deviceId: string; user: string }): Promise<void> };
  cspViolations: string[];
  inlineRan?: boolean;
}


export interface WebAppBed {
  running: RunningMailotp;
  portal: AppPortal;
  imapPort: number;
  /** Where screenshots go (docs/screenshots with MAILOTP_SCREENSHOTS=1). */
  screenshots: string;
  phone(locale?: string): Promise<Phone>;
  /** Binds a device as `mailotp device add` does and puts its token where the app keeps it. */
  pairedPhone(user: string, locale?: string): Promise<Phone & { device: DeviceRecord; token: string }>;
  /** Stands in for RequestService.openLogin (portal sign-in, helper 10a): a login request with three numbers. */
  openLoginRequest(device: DeviceRecord, clientIp: string, choices: number[], matchNumber: number): Promise<RequestRecord>;
  stop(): Promise<void>;
}

export function item(page: Page, text: RegExp | string) {
  return page.getByRole('listitem').filter({ hasText: text });
}

export async function startWebAppBed(): Promise<WebAppBed> {
  const phones: Phone[] = [];
  const dir = mkdtempSync(join(tmpdir(), 'mailotp-webapp-'));
  // What has started so far, stopped in reverse should a later step fail: nothing is left behind.
  const started: (() => Promise<unknown>)[] = [async () => rmSync(dir, { recursive: true, force: true })];
  const undo = async () => {
    for (const stop of started.reverse()) await stop().catch(() => undefined);
  };
  const start = async <T>(make: () => Promise<T>, stop: (v: T) => Promise<unknown>): Promise<T> => {
    try {
      const v = await make();
      started.push(() => stop(v));
      return v;
    } catch (err) {
      await undo();
      throw err;
    }
  };
  const certs = testCerts();
  const vapidKeyFile = join(dir, 'vapid.json');
  const dovecot = await start(() => startDovecot({ users: USERS }), (d) => d.stop());
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
  const running = await start(() => startMailotp(config, { logger: silentLogger() }), (r) => r.stop(0));
  const imapPort = running.listeners[0]!.port;
  const portal = await start(() => startAppPortal(running.core, silentLogger(), loadOrCreateVapidKeys(vapidKeyFile).keys.publicKey), (p) => p.close());
  const browser = await start(
    () =>
      chromium.launch({
        executablePath: '/usr/bin/chromium',
        args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking', `--ignore-certificate-errors-spki-list=${spkiHash(certs.certFile)}`],
      }),
    (b) => b.close(),
  );
  const screenshots = process.env.MAILOTP_SCREENSHOTS === '1' ? DOCS_SCREENSHOTS : join(dir, 'screenshots');
  mkdirSync(screenshots, { recursive: true });

  async function phone(locale = 'en-US'): Promise<Phone> {
    const ctx = await browser.newContext({ viewport: { width: 390, height: 844 }, deviceScaleFactor: 2, isMobile: true, hasTouch: true, locale, userAgent: PHONE_UA });
    const page = await ctx.newPage();
    const problems: string[] = [];
    page.on('console', (m) => {
      if (m.type() === 'error') problems.push(`console: ${m.text()}`);
    });
    page.on('pageerror', (e) => problems.push(`pageerror: ${e.message}`));
    await page.addInitScript(() => {
      const w = globalThis as typeof globalThis & PageGlobals;
      w.cspViolations = [];
      w.document.addEventListener('securitypolicyviolation', (e) => w.cspViolations.push(`${e.violatedDirective} ${e.blockedURI}`));
    });
    const p = { ctx, page, problems };
    phones.push(p);
    return p;
  }

  async function pairedPhone(user: string, locale?: string): Promise<Phone & { device: DeviceRecord; token: string }> {
    const bound = await running.core.devices.bind(user, 'Pixel 8 (web app)', true);
    assert.equal(bound.status, 'bound');
    if (bound.status !== 'bound') throw new Error('not bound');
    const p = await phone(locale);
    await p.page.goto(`${portal.origin}/app/`);
    await p.page.waitForFunction(() => 'mailotpDeviceStore' in globalThis);
    await p.page.evaluate(
      (creds) => (globalThis as typeof globalThis & PageGlobals).mailotpDeviceStore.save(creds),
      { token: bound.token, deviceId: bound.device.deviceId, user },
    );
    await p.page.reload();
    await p.page.locator('#live', { hasText: /Live|即時/ }).waitFor();
    return { ...p, device: bound.device, token: bound.token };
  }

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
    if (!request) throw new Error('createRequest refused the test request');
    await running.core.store.appendEvent({ type: 'request.opened', request }, now, running.core.requests.eventRetentionMs);
    return request;
  }

  return {
    running,
    portal,
    imapPort,
    screenshots,
    phone,
    pairedPhone,
    openLoginRequest,
    async stop() {
      for (const p of phones) await p.ctx.close().catch(() => undefined);
      await undo();
    },
  };
}
