import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type { Browser, BrowserContext, Page } from 'playwright-core';
import { startDovecot, type DovecotHandle } from '../helpers/dovecot.js';
import { startRedisServer, type RedisServerHandle } from '../helpers/redis-server.js';
import { launchChromium, pickOnPhone, portalContext, portalPassword, raw, signIn, startPortalFixture, type PortalFixture } from './browser-kit.js';
import { enrol, startMailotp, type MailotpProcess } from './harness.js';

const pw = portalPassword;

/** Two instances on one real Redis, one Dovecot, one Chromium: a browser remembered on one is known to both. */
describe('remembered browsers: the password alone signs in on a remembered browser, on every instance, until revoked (headless Chromium, real Redis)', { timeout: 600_000 }, () => {
  let dovecot: DovecotHandle;
  let redis: RedisServerHandle;
  let a: MailotpProcess;
  let b: MailotpProcess;
  let browser: Browser;
  const contexts: BrowserContext[] = [];

  before(async () => {
    [dovecot, redis] = await Promise.all([startDovecot({ users: ['rita', 'rob', 'rex'].map((user) => ({ user, password: pw(user) })) }), startRedisServer()]);
    const store = { driver: 'redis', url: redis.url, keyPrefix: `rb${process.pid}:` };
    [a, b] = await Promise.all([startMailotp({ dovecot, store }), startMailotp({ dovecot, store })]);
    browser = await launchChromium();
  });
  after(async () => {
    for (const c of contexts) await c.close().catch(() => undefined);
    await browser?.close();
    await Promise.all([a?.stop(), b?.stop()]);
    await Promise.all([redis?.stop(), dovecot?.stop()]);
  });

  const newPage = async (): Promise<Page> => {
    const ctx = await portalContext(browser, a.portal);
    contexts.push(ctx);
    return ctx.newPage();
  };
  const at = (m: MailotpProcess, path: string) => `https://localhost:${m.portal}${path}`;

  /** The password step on instance m; returns where the browser landed. */
  const signInAt = async (page: Page, m: MailotpProcess, user: string): Promise<'second-step' | 'settings'> => {
    await page.goto(at(m, '/'));
    await page.getByLabel('User name').fill(user);
    await page.getByLabel('Password').fill(pw(user));
    await page.getByRole('button', { name: 'Sign in' }).click();
    await page.waitForURL((u) => u.pathname === '/' || u.pathname === '/settings');
    return new URL(page.url()).pathname === '/settings' ? 'settings' : 'second-step';
  };

  /** The phone step: optionally "Remember this browser" first (saved at once by the page), then the tap. */
  const approve = async (page: Page, m: MailotpProcess, token: string, remember: boolean) => {
    const number = Number(await page.getByTestId('match-number').textContent());
    if (remember) {
      // portal.js saves the choice at once (POST /signin/remember) and the page comes back with the box ticked.
      const saved = page.waitForResponse((r) => r.url().endsWith('/signin/remember'));
      await page.getByLabel('Remember this browser').check();
      await saved;
      await page.waitForLoadState();
      assert.equal(await page.getByLabel('Remember this browser').isChecked(), true);
      assert.equal(Number(await page.getByTestId('match-number').textContent()), number, 'the same request still waits');
    }
    const { status } = await pickOnPhone(m.portal, token, number);
    assert.equal(status, 200);
    await page.waitForURL('**/settings');
  };

  const signOut = async (page: Page) => {
    await page.getByRole('button', { name: 'Sign out' }).click();
    await page.waitForURL((u) => u.pathname === '/');
  };

  const rows = (page: Page) => page.getByTestId('remembered-browser');

  it('remembers, skips the step on both instances for that user only, lists, revokes one and all, and forward auth counts it as two factors', async () => {
    const rita = await enrol(a, 'rita');
    const rob = await enrol(a, 'rob');

    const first = await newPage();
    assert.equal(await signInAt(first, a, 'rita'), 'second-step');
    await approve(first, a, rita, true);
    await first.getByRole('heading', { name: 'Remembered browsers' }).waitFor();
    assert.equal(await rows(first).count(), 1);
    assert.match((await rows(first).first().textContent()) ?? '', /Chrome · Linux.*\(this browser\)/s);
    await a.waitForLog((e) => e.event === 'browser.remembered' && e.user === 'rita');
    await signOut(first);

    // Password only, on the other instance too.
    assert.equal(await signInAt(first, b, 'rita'), 'settings', 'a remembered browser skips the second step');
    await b.waitForLog((e) => e.event === 'browser.skipped-second-step' && e.user === 'rita');
    assert.doesNotMatch((await rows(first).first().textContent()) ?? '', /never/, 'its last use is shown');
    // Forward auth: a remembered browser stands in for the second factor.
    const verify = await first.request.get(at(b, '/auth/verify'), { maxRedirects: 0 });
    assert.equal(verify.status(), 200);
    assert.equal(verify.headers()['x-mailotp-user'], 'rita');
    await signOut(first);
    // The password is still checked.
    await first.goto(at(a, '/'));
    await first.getByLabel('User name').fill('rita');
    await first.getByLabel('Password').fill('wrong-password');
    await first.getByRole('button', { name: 'Sign in' }).click();
    await first.getByText('Wrong user name or password.').waitFor();

    // rita's cookie does not skip rob's step.
    assert.equal(await signInAt(first, a, 'rob'), 'second-step');
    await first.getByTestId('match-number').waitFor();
    await approve(first, a, rob, false);
    await signOut(first);

    // Another browser still gets the step; it is remembered too.
    const second = await newPage();
    assert.equal(await signInAt(second, a, 'rita'), 'second-step');
    await approve(second, a, rita, true);
    assert.equal(await rows(second).count(), 2);
    const shown = JSON.parse((await a.cli(['user', 'show', 'rita', '--json'])).stdout) as { rememberedBrowsers: { browser: string; os: string; clientIp: string }[] };
    assert.equal(shown.rememberedBrowsers.length, 2);
    assert.deepEqual(shown.rememberedBrowsers.map((x) => [x.browser, x.os, x.clientIp]), [['Chrome', 'Linux', '127.0.0.1'], ['Chrome', 'Linux', '127.0.0.1']]);

    // Revoked from the second browser, on instance B: the first asks for the step again, on A, at once.
    await second.goto(at(b, '/settings'));
    const other = rows(second).filter({ hasNotText: '(this browser)' });
    await other.getByRole('button', { name: 'Revoke' }).click();
    await second.getByText('The browser was forgotten: it asks for the second step again.').waitFor();
    assert.equal(await rows(second).count(), 1);
    await b.waitForLog((e) => e.event === 'browser.revoked' && e.user === 'rita' && e.via === 'portal');
    assert.equal(await signInAt(first, a, 'rita'), 'second-step');
    await approve(first, a, rita, false);
    await signOut(first);

    // Revoke all, on A: the second browser asks again on B.
    await second.goto(at(a, '/settings'));
    await second.getByRole('button', { name: 'Revoke all' }).click();
    await second.getByText('Every remembered browser was forgotten.').waitFor();
    await second.getByText('No remembered browsers.').waitFor();
    await a.waitForLog((e) => e.event === 'browser.revoked-all' && e.user === 'rita');
    await signOut(second);
    assert.equal(await signInAt(second, b, 'rita'), 'second-step');
    await second.getByTestId('match-number').waitFor();
  });

  it('mailotp user reset --browsers forgets them (and a reset of every method does too); user show lists none then', async () => {
    const token = await enrol(a, 'rob');
    const page = await newPage();
    assert.equal(await signInAt(page, b, 'rob'), 'second-step');
    await approve(page, b, token, true);
    await signOut(page);
    assert.equal(await signInAt(page, a, 'rob'), 'settings');
    await signOut(page);

    const reset = await a.cli(['user', 'reset', 'ROB', '--browsers', '--json']);
    assert.equal(reset.code, 0, reset.stderr);
    assert.deepEqual(JSON.parse(reset.stdout), { user: 'rob', removed: [], notSetUp: [], browsersRevoked: 1 });
    const text = await a.cli(['user', 'show', 'rob']);
    assert.match(text.stdout, /browsers: +none remembered/);
    assert.equal(await signInAt(page, b, 'rob'), 'second-step');
    await approve(page, b, token, true);
    await signOut(page);

    const all = await a.cli(['user', 'reset', 'rob', '--json']);
    assert.equal(all.code, 0, all.stderr);
    assert.equal((JSON.parse(all.stdout) as { browsersRevoked: number }).browsersRevoked, 1);
    assert.deepEqual((JSON.parse((await a.cli(['user', 'show', 'rob', '--json'])).stdout) as { rememberedBrowsers: unknown[] }).rememberedBrowsers, []);
  });

  it('a sign-in waiting on one instance learns of a tap taken by another at once (the store carries it)', async () => {
    const token = await enrol(a, 'rex');
    const page = await newPage();
    assert.equal(await signInAt(page, a, 'rex'), 'second-step');
    const number = Number(await page.getByTestId('match-number').textContent());
    const c = (await page.context().cookies()).find((x) => x.name === '__Host-mailotp-session');
    assert.ok(c);
    await page.goto('about:blank');
    // B holds the status request; the phone answers A.
    let answered = false;
    const held = raw(b.portal, 'GET', '/signin/status?wait=1', { cookie: `${c.name}=${c.value}`, accept: 'application/json' }).finally(() => (answered = true));
    await new Promise((r) => setTimeout(r, 800));
    assert.equal(answered, false, 'B holds it while nothing is decided');
    const { status } = await pickOnPhone(a.portal, token, number);
    assert.equal(status, 200);
    const answer = await held;
    assert.deepEqual(JSON.parse(answer.text), { status: 'approved', next: '/' });
    const load = await raw(b.portal, 'GET', '/', { cookie: `${c.name}=${c.value}` });
    assert.deepEqual([load.status, load.headers.location], [303, '/settings']);
    assert.match(String(load.headers['set-cookie'] ?? ''), /__Host-mailotp-session=/);
  });
});

describe('portal.rememberBrowser off: no box, no skipping (headless Chromium, real binary)', { timeout: 600_000 }, () => {
  let fx: PortalFixture;
  before(async () => {
    fx = await startPortalFixture(['olga'], 'https://localhost:0', { rememberBrowser: 'off' });
  });
  after(async () => {
    await fx?.close();
  });

  it('the phone step has no "Remember this browser", and the next sign-in asks for the phone again', async () => {
    const token = await enrol(fx.m, 'olga');
    const page = await fx.newPage();
    await signIn(page, 'olga', pw('olga'));
    await page.getByTestId('match-number').waitFor();
    assert.equal(await page.getByLabel('Remember this browser').count(), 0);
    const { status } = await pickOnPhone(fx.m.portal, token, Number(await page.getByTestId('match-number').textContent()));
    assert.equal(status, 200);
    await page.waitForURL('**/settings');
    assert.equal(await page.getByRole('heading', { name: 'Remembered browsers' }).count(), 0);
    await page.getByRole('button', { name: 'Sign out' }).click();
    await signIn(page, 'olga', pw('olga'));
    await page.getByTestId('match-number').waitFor();
  });
});
