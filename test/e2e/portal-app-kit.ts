/** The portal's pages (desktop-sized) and the web authenticator app (phone-sized) side by side on the real binary. */
import type { BrowserContext, Page } from 'playwright-core';
import { PHONE, portalContext, portalPassword, signIn, startPortalFixture, type PortalFixture } from './browser-kit.js';
import type { PageGlobals } from './web-app-kit.js';

const pw = portalPassword;

export interface AppPhone {
  page: Page;
  /** Console errors, uncaught exceptions, HTTP errors and CSP violations seen on the app page. */
  problems(): Promise<string[]>;
}

export interface PortalAppBed {
  fx: PortalFixture;
  /** A phone-sized context (its own storage) with a page in it, watched for problems. */
  phone(locale?: string): Promise<AppPhone>;
  /** The app on an unpaired phone: its device verification code as shown (123 456 789). */
  codeOnPhone(p: AppPhone): Promise<string>;
  /** A signed-in settings page for a user with no phone yet (password alone). */
  settingsPage(user: string, locale?: string): Promise<Page>;
  /** Pairs a phone by the code flow; `mailApps` first turns on "Two-factor required for send/receive". */
  pairedByCode(user: string, mailApps?: boolean): Promise<{ app: AppPhone; desktop: Page }>;
  close(): Promise<void>;
}

export async function startPortalAppBed(users: readonly string[]): Promise<PortalAppBed> {
  const fx = await startPortalFixture(users);
  const contexts: BrowserContext[] = [];
  async function phone(locale = 'en-US'): Promise<AppPhone> {
    const ctx = await portalContext(fx.browser, fx.m.portal, { viewport: PHONE, locale });
    contexts.push(ctx);
    const page = await ctx.newPage();
    const seen: string[] = [];
    page.on('console', (msg) => {
      if (msg.type() === 'error') seen.push(`console: ${msg.text()}`);
    });
    page.on('pageerror', (e) => seen.push(`pageerror: ${e.message}`));
    page.on('response', (r) => {
      if (r.status() >= 400) seen.push(`${r.status()} ${new URL(r.url()).pathname}`);
    });
    await page.addInitScript(() => {
      const w = globalThis as typeof globalThis & PageGlobals;
      w.cspViolations = [];
      w.document.addEventListener('securitypolicyviolation', (e) => w.cspViolations.push(`${e.violatedDirective} ${e.blockedURI}`));
    });
    return {
      page,
      async problems() {
        const csp = await page.evaluate(() => (globalThis as typeof globalThis & PageGlobals).cspViolations).catch(() => [] as string[]);
        return [...seen, ...csp.map((v) => `csp: ${v}`)];
      },
    };
  }

  async function codeOnPhone(p: AppPhone): Promise<string> {
    await p.page.goto('/app/');
    const code = p.page.getByTestId('device-code');
    await p.page.waitForFunction(() => /^\d{3} \d{3} \d{3}$/.test((globalThis as typeof globalThis & PageGlobals).document.querySelector('[data-testid="device-code"]')?.textContent ?? ''));
    return (await code.textContent()) ?? '';
  }

  async function settingsPage(user: string, locale?: string): Promise<Page> {
    const page = await fx.newPage(locale ? { locale } : {});
    if (locale === 'zh-TW') {
      await page.goto('/');
      await page.getByLabel('使用者名稱').fill(user);
      await page.getByLabel('密碼').fill(pw(user));
      await page.getByRole('button', { name: '登入' }).click();
    } else {
      await signIn(page, user, pw(user));
    }
    await page.waitForURL('**/settings');
    return page;
  }

  /** Pairs a phone-sized app page by the code flow; resolves once the app says it is paired.
   * `mailApps` first turns on "Two-factor required for send/receive" (while no phone needs asking). */
  async function pairedByCode(user: string, mailApps = false): Promise<{ app: AppPhone; desktop: Page }> {
    const app = await phone();
    const code = await codeOnPhone(app);
    const desktop = await settingsPage(user);
    if (mailApps) {
      await desktop.getByRole('switch', { name: 'Two-factor required for send/receive' }).click();
      await desktop.getByText('Saved.').waitFor();
    }
    await desktop.getByLabel('Device verification code').fill(code);
    await desktop.getByRole('button', { name: 'Bind', exact: true }).click();
    await desktop.getByText('Your phone is bound.').waitFor();
    await app.page.getByText(`Approving for ${user}`).waitFor({ timeout: 10_000 });
    return { app, desktop };
  }


  return {
    fx,
    phone,
    codeOnPhone,
    settingsPage,
    pairedByCode,
    async close() {
      for (const c of contexts) await c.close().catch(() => undefined);
      await fx.close();
    },
  };
}
