/**
 * npm run screenshots: pictures of every portal page at phone (360x740) and desktop width, in
 * docs/screenshots/, taken from the real mailotp in front of the test Dovecot in headless Chromium.
 */
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Page } from 'playwright-core';
import { DESKTOP, PHONE, pickOnPhone, portalContext, portalPassword, signIn, startPortalFixture } from '../test/e2e/browser-kit.js';
import { decide, enrol, imapClient, waitForRequest } from '../test/e2e/harness.js';

const out = fileURLToPath(new URL('../../docs/screenshots/', import.meta.url));

async function main(): Promise<void> {
  mkdirSync(out, { recursive: true });
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
    process.stdout.write(`screenshots written to ${out}\n`);
  } finally {
    await fx.close();
  }
}

main().catch((err: unknown) => {
  process.stderr.write(`${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
  process.exit(1);
});
