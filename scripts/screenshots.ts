/**
 * npm run screenshots: pictures of every portal page at phone (360x740) and desktop width, in
 * docs/screenshots/, taken from the real mailotp in front of the test Dovecot in headless Chromium.
 * `npm run screenshots -- passkeys` takes only the passkey pages.
 */
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { CDPSession, Page } from 'playwright-core';
import { DESKTOP, PHONE, pickOnPhone, portalContext, portalPassword, signIn, startPortalFixture } from '../test/e2e/browser-kit.js';
import { decide, enrol, imapClient, waitForRequest } from '../test/e2e/harness.js';

const out = fileURLToPath(new URL('../../docs/screenshots/', import.meta.url));

async function main(): Promise<void> {
  mkdirSync(out, { recursive: true });
  if (process.argv[2] !== 'passkeys') await portalShots();
  await passkeyShots();
  process.stdout.write(`screenshots written to ${out}\n`);
}

async function portalShots(): Promise<void> {
  const fx = await startPortalFixture(['sam', 'kim'], 'https://mail.example.com:8443');
  const { m } = fx;
  try {
    const token = await enrol(m, 'kim');
    // One approved mail app, so the settings page has something to list.
    const client = imapClient(m.imaps, 'kim', portalPassword('kim'), { localAddress: '127.0.0.3' });
    const connecting = client.connect();
    await decide(m.portal, token, (await waitForRequest(m.portal, token, (r) => r.type === 'connection')).id, 'approve');
    await connecting;
    await client.logout();

    for (const [size, viewport] of [
      ['phone', PHONE],
      ['desktop', DESKTOP],
    ] as const) {
      const shot = (page: Page, name: string) => page.screenshot({ path: join(out, `${name}-${size}.png`), fullPage: true });
      const ctx = await portalContext(fx.browser, m.portal, { viewport });
      const page = await ctx.newPage();
      await page.goto('/');
      await shot(page, 'sign-in');

      await signIn(page, 'sam', portalPassword('sam'));
      await page.waitForURL('**/settings');
      await shot(page, 'settings-no-phone');
      await page.getByRole('button', { name: 'Bind a phone' }).click();
      await page.getByRole('img', { name: 'Pairing QR code' }).waitFor();
      await shot(page, 'settings-pairing');
      await page.getByRole('button', { name: 'Cancel' }).click();
      await page.getByRole('button', { name: 'Sign out' }).click();
      await page.waitForURL((u) => u.pathname === '/');

      await signIn(page, 'kim', portalPassword('kim'));
      const shown = Number(await page.getByTestId('match-number').textContent());
      await shot(page, 'sign-in-approve');
      // "Remember this browser" (saved at once), so that the settings page lists this browser.
      const saved = page.waitForResponse((r) => r.url().endsWith('/signin/remember'));
      await page.getByLabel('Remember this browser').check();
      await saved;
      await page.waitForLoadState();
      await pickOnPhone(m.portal, token, shown);
      await page.waitForURL('**/settings');
      await shot(page, 'settings');
      const browsers = (name: string) => page.locator('#browsers').screenshot({ path: join(out, `${name}-${size}.png`) });
      await browsers('remembered-browsers');
      await page.getByRole('button', { name: 'Clear bound device' }).click();
      await page.getByRole('heading', { name: 'Clear the bound phone?' }).waitFor();
      await shot(page, 'clear-confirm');
      await page.goto('/settings?lang=zh-TW');
      await shot(page, 'settings-zh-TW');
      await browsers('remembered-browsers-zh-TW');
      await page.getByRole('button', { name: '登出' }).click();
      await page.waitForURL((u) => u.pathname === '/');
      await shot(page, 'sign-in-zh-TW');
      await page.goto('/?lang=en');
      await ctx.close();
    }
  } finally {
    await fx.close();
  }
}

/** Chromium's virtual authenticator (a platform passkey) on this page. */
async function virtualAuthenticator(page: Page): Promise<CDPSession> {
  const cdp = await page.context().newCDPSession(page);
  await cdp.send('WebAuthn.enable', { enableUI: false });
  await cdp.send('WebAuthn.addVirtualAuthenticator', {
    options: { protocol: 'ctap2', transport: 'internal', hasResidentKey: true, hasUserVerification: true, isUserVerified: true, automaticPresenceSimulation: true },
  });
  return cdp;
}

/** The passkey pages. No publicUrl: the RP ID is the Host the browser uses (localhost), as WebAuthn wants. */
async function passkeyShots(): Promise<void> {
  const fx = await startPortalFixture(['pat'], 'https://localhost:0', { publicUrl: undefined });
  try {
    for (const [size, viewport] of [
      ['phone', PHONE],
      ['desktop', DESKTOP],
    ] as const) {
      const shot = (page: Page, name: string) => page.screenshot({ path: join(out, `${name}-${size}.png`), fullPage: true });
      const ctx = await portalContext(fx.browser, fx.m.portal, { viewport });
      const page = await ctx.newPage();
      await virtualAuthenticator(page);
      await signIn(page, 'pat', portalPassword('pat'));
      await page.waitForURL('**/settings');
      await page.getByLabel('Passkey name').fill(size === 'phone' ? 'Pixel 8' : 'Work laptop');
      await page.getByRole('button', { name: 'Add a passkey' }).click();
      await page.getByText('Your passkey is added.').waitFor();
      await page.locator('#passkeys').scrollIntoViewIfNeeded();
      await shot(page, 'settings-passkeys');
      await page.getByRole('button', { name: 'Sign out' }).click();
      await page.waitForURL((u) => u.pathname === '/');
      await signIn(page, 'pat', portalPassword('pat'));
      await page.getByRole('button', { name: 'Continue with a passkey' }).waitFor();
      await shot(page, 'sign-in-passkey');
      await page.goto('/?lang=zh-TW');
      await shot(page, 'sign-in-passkey-zh-TW');
      await page.getByRole('button', { name: '使用通行金鑰繼續' }).click();
      await page.waitForURL('**/settings');
      await shot(page, 'settings-passkeys-zh-TW');
      // The next size starts without passkeys.
      await page.getByRole('button', { name: '移除' }).click();
      await page.waitForURL('**/settings?done=passkey-removed');
      await page.goto('/?lang=en');
      await ctx.close();
    }
  } finally {
    await fx.close();
  }
}

main().catch((err: unknown) => {
  process.stderr.write(`${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
  process.exit(1);
});
