import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { chromium, type Browser, type BrowserContext, type Page } from 'playwright-core';
import { testCerts } from '../helpers/certs.js';
import { startDovecot, type DovecotHandle } from '../helpers/dovecot.js';
import { freePort } from '../helpers/free-port.js';
import { startNginx, type NginxHandle } from '../helpers/nginx.js';
import { CHROMIUM, DESKTOP, pickOnPhone, portalPassword, raw } from './browser-kit.js';
import { enrol, startMailotp, type MailotpProcess } from './harness.js';

const DOMAIN = 'mailotp.test';

/** nginx in front of a static "webmail" page, asking the portal through auth_request, as the README shows. */
function nginxConfig(nginxPort: number, portalPort: number): string {
  const certs = testCerts();
  return `server {
    listen 127.0.0.1:${nginxPort} ssl;
    server_name webmail.${DOMAIN};
    ssl_certificate ${certs.certFile};
    ssl_certificate_key ${certs.keyFile};
    root {dir}/www;

    location = /mailotp-verify {
      internal;
      proxy_pass https://127.0.0.1:${portalPort}/auth/verify;
      proxy_pass_request_body off;
      proxy_set_header Content-Length "";
    }
    location @mailotp-signin {
      return 302 https://portal.${DOMAIN}:${portalPort}/auth/login?rd=$scheme://$http_host$request_uri;
    }
    location / {
      auth_request /mailotp-verify;
      auth_request_set $mailotp_user $upstream_http_x_mailotp_user;
      error_page 401 = @mailotp-signin;
      # What the webmail would read as its user (Roundcube: a plugin trusting this header).
      add_header X-Seen-User $mailotp_user;
      try_files $uri /index.html;
    }
  }`;
}

describe('forward auth: a real nginx in front of a page, the portal in headless Chromium (real Dovecot)', { timeout: 600_000 }, () => {
  let dovecot: DovecotHandle;
  let m: MailotpProcess;
  let nginx: NginxHandle;
  let browser: Browser;
  let webmail: string;
  let portal: string;
  const contexts: BrowserContext[] = [];

  const newPage = async (): Promise<Page> => {
    const ctx = await browser.newContext({ ignoreHTTPSErrors: true, viewport: DESKTOP, locale: 'en-US' });
    contexts.push(ctx);
    return ctx.newPage();
  };

  const signInOnPortal = async (page: Page, user: string) => {
    await page.getByLabel('User name').fill(user);
    await page.getByLabel('Password').fill(portalPassword(user));
    await page.getByRole('button', { name: 'Sign in' }).click();
  };

  before(async () => {
    dovecot = await startDovecot({ users: ['wendy', 'pete', 'olga'].map((user) => ({ user, password: portalPassword(user) })) });
    const nginxPort = await freePort();
    webmail = `https://webmail.${DOMAIN}:${nginxPort}`;
    m = await startMailotp({ dovecot, portal: { allowedRedirects: [`webmail.${DOMAIN}:${nginxPort}`], cookieDomain: DOMAIN } });
    portal = `https://portal.${DOMAIN}:${m.portal}`;
    nginx = await startNginx(nginxPort, nginxConfig(nginxPort, m.portal), {
      'www/index.html': '<!doctype html><html><head><title>Webmail</title></head><body><h1>Webmail inbox</h1></body></html>\n',
    });
    browser = await chromium.launch({
      executablePath: CHROMIUM,
      // Both names on this machine: the cookie's Domain is shared by two real host names.
      args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking', `--host-resolver-rules=MAP *.${DOMAIN} 127.0.0.1`],
    });
  });
  after(async () => {
    for (const c of contexts) await c.close().catch(() => undefined);
    await browser?.close();
    await nginx?.stop();
    await m?.stop();
    await dovecot?.stop();
  });

  it('sends a stranger to the sign-in, lets the phone-approved user back to the exact page, and shuts the door at sign-out', async () => {
    const token = await enrol(m, 'wendy');
    const page = await newPage();
    const original = `${webmail}/?_task=mail&_mbox=INBOX`;
    await page.goto(original);
    await page.waitForURL((u) => u.origin === portal && u.pathname === '/');
    await page.getByRole('button', { name: 'Sign in' }).waitFor();

    await signInOnPortal(page, 'wendy');
    const shown = Number(await page.getByTestId('match-number').textContent());
    assert.equal((await pickOnPhone(m.portal, token, shown)).status, 200);
    await page.waitForURL(original);
    await page.getByRole('heading', { name: 'Webmail inbox' }).waitFor();

    const session = (await page.context().cookies()).find((c) => c.name === '__Secure-mailotp-session');
    assert.ok(session, 'the session cookie is shared under the configured domain');
    assert.equal(session.domain, `.${DOMAIN}`);
    assert.ok(session.httpOnly && session.secure);
    const csrf = (await page.context().cookies()).find((c) => c.name === '__Host-mailotp-csrf');
    assert.equal(csrf?.domain, `portal.${DOMAIN}`, 'the CSRF secret stays on the portal host');

    const seen = await page.goto(`${webmail}/whoami`);
    assert.equal(seen?.status(), 200);
    assert.equal(seen?.headers()['x-seen-user'], 'wendy', 'nginx passes on the canonical user');

    // Signed in already: the next trip through /auth/login goes straight back.
    await page.goto(`${portal}/auth/login?rd=${encodeURIComponent(`${webmail}/other`)}`);
    await page.waitForURL(`${webmail}/other`);

    await page.goto(`${portal}/settings`);
    await page.getByRole('button', { name: 'Sign out' }).click();
    await page.waitForURL((u) => u.origin === portal && u.pathname === '/');
    // The same browser, the very next request: refused again.
    await page.goto(`${webmail}/whoami`);
    await page.waitForURL((u) => u.origin === portal && u.pathname === '/');
    // And the old cookie value, kept by someone, opens nothing.
    const replay = await raw(m.portal, 'GET', '/auth/verify', { cookie: `__Secure-mailotp-session=${session.value}` });
    assert.equal(replay.status, 401);
  });

  it('refuses a password-only session (no second factor set up): the portal keeps it on the settings page', async () => {
    const page = await newPage();
    await page.goto(`${webmail}/`);
    await page.waitForURL((u) => u.origin === portal && u.pathname === '/');
    await signInOnPortal(page, 'pete');
    await page.waitForURL(`${portal}/settings`);
    await page.getByText('Signed in as pete').waitFor();
    await page.goto(`${webmail}/`);
    await page.waitForURL((u) => u.origin === portal);
    assert.equal(await page.getByRole('heading', { name: 'Webmail inbox' }).count(), 0);
  });

  it('never sends the browser to a host that is not listed', async () => {
    for (const rd of ['//evil.example/', 'https://evil.example/', `https://evil@webmail.${DOMAIN}/`, `https://webmail.${DOMAIN}:1/`, 'https:/\\evil.example/', `${webmail.replace('https', 'http')}/`]) {
      const r = await raw(m.portal, 'GET', `/auth/login?rd=${encodeURIComponent(rd)}`);
      assert.equal(r.status, 303, rd);
      assert.equal(r.headers.location, '/', rd);
      assert.equal(r.headers['set-cookie'], undefined, `${rd}: nothing remembered`);
    }
  });

  it('answers Traefik and Caddy (X-Forwarded-*) with a redirect to the sign-in, nginx with a bare 401', async () => {
    const bare = await raw(m.portal, 'GET', '/auth/verify');
    assert.equal(bare.status, 401);
    assert.equal(bare.headers['x-mailotp-user'], undefined);
    assert.equal(bare.headers['cache-control'], 'no-store');
    const forwarded = { 'x-forwarded-proto': 'https', 'x-forwarded-host': new URL(webmail).host, 'x-forwarded-uri': '/?_task=mail&x=1', 'x-forwarded-method': 'GET' };
    const traefik = await raw(m.portal, 'GET', '/auth/verify', forwarded);
    assert.equal(traefik.status, 302);
    const to = new URL(String(traefik.headers.location));
    assert.equal(to.pathname, '/auth/login');
    assert.equal(to.searchParams.get('rd'), `${webmail}/?_task=mail&x=1`);
    const elsewhere = await raw(m.portal, 'GET', '/auth/verify', { ...forwarded, 'x-forwarded-host': 'evil.example' });
    assert.equal(elsewhere.status, 401, 'no redirect is built for a host that is not listed');
    const post = await raw(m.portal, 'GET', '/auth/verify', { ...forwarded, 'x-forwarded-method': 'POST' });
    assert.equal(post.status, 401);
  });
});
