import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type { Page } from 'playwright-core';
import { heldStatus, pickOnPhone, portalPassword, raw, signIn, startPortalFixture, type PortalFixture } from './browser-kit.js';
import { deviceApi, enrol, waitForRequest, type MailotpProcess } from './harness.js';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

const pw = portalPassword;

// A Chromium per file on a shared machine: the file may take longer than one test's limit.
describe('portal sign-in in headless Chromium (real Dovecot, real binary)', { timeout: 600_000 }, () => {
  let fx: PortalFixture;
  let m: MailotpProcess;
  const newPage = (opts: { locale?: string } = {}): Promise<Page> => fx.newPage(opts);

  before(async () => {
    fx = await startPortalFixture(['pat', 'mona', 'nico', 'ivy', 'gus', 'hal']);
    m = fx.m;
  });
  after(async () => {
    await fx?.close();
  });

  it('refuses a wrong password with the upstream and says so', async () => {
    const page = await newPage();
    await signIn(page, 'pat', 'not-the-password');
    await page.getByText('Wrong user name or password.').waitFor();
    assert.equal(new URL(page.url()).pathname, '/signin');
    await page.getByLabel('Password').waitFor();
  });

  it('signs in a user with no phone by password alone; sign-out ends the session for good', async () => {
    const page = await newPage();
    await signIn(page, 'pat', pw('pat'));
    await page.waitForURL('**/settings');
    await page.getByText('Signed in as pat').waitFor();
    await page.getByRole('button', { name: 'Bind a phone' }).waitFor();
    const session = (await page.context().cookies()).find((c) => c.name === '__Host-mailotp-session');
    assert.ok(session && session.httpOnly && session.secure && session.sameSite === 'Lax', 'HttpOnly; Secure; SameSite=Lax');

    await page.getByRole('button', { name: 'Sign out' }).click();
    await page.waitForURL((u) => u.pathname === '/');
    await page.getByRole('button', { name: 'Sign in' }).waitFor();
    // The old cookie, replayed by someone who kept it, is worth nothing now.
    const replay = await raw(m.portal, 'GET', '/settings', { cookie: `__Host-mailotp-session=${session.value}` });
    assert.equal(replay.status, 303);
    assert.equal(replay.headers.location, '/');
  });

  it('signs in with number matching: the right number lets the page move on, the phone was last used now', async () => {
    const token = await enrol(m, 'mona');
    const page = await newPage();
    await signIn(page, 'mona', pw('mona'));
    const shown = Number(await page.getByTestId('match-number').textContent());
    assert.ok(shown >= 10 && shown <= 99);
    const { request, status, json } = await pickOnPhone(m.portal, token, shown);
    assert.equal(request.type, 'login');
    assert.equal(request.protocol, 'web');
    assert.equal(request.choices?.length, 3);
    assert.ok(request.choices?.includes(shown));
    assert.ok(!('matchNumber' in request), 'the number to pick is never sent to the phone');
    assert.deepEqual({ status, json }, { status: 200, json: { status: 'approved' } });
    await page.waitForURL('**/settings');
    await page.getByText('Test phone').waitFor();
    const recent = page.getByRole('region', { name: 'Recent requests' });
    await recent.getByText('Web sign-in').waitFor();
    await recent.getByText('Approved').waitFor();
    assert.equal(await page.getByText('never').count(), 0, 'last used is set');
    assert.deepEqual((await deviceApi(m.portal, token, 'GET', '/api/v1/device/requests')).json, { requests: [] });
    const approvals = await m.cli(['approvals', 'list', '--user', 'mona', '--json']);
    assert.deepEqual((JSON.parse(approvals.stdout) as { approvals: unknown[] }).approvals, [], 'a web sign-in opens no mail approval');

    // The admin clears the phone: the session that phone approved ends at once.
    assert.equal((await m.cli(['device', 'remove', 'mona'])).code, 0);
    await page.goto('/settings');
    await page.waitForURL((u) => u.pathname === '/');
  });

  it('denies the sign-in when the phone picks another number, and the page says so', async () => {
    const token = await enrol(m, 'nico');
    const page = await newPage();
    await signIn(page, 'nico', pw('nico'));
    const shown = Number(await page.getByTestId('match-number').textContent());
    const request = await waitForRequest(m.portal, token, (r) => r.type === 'login');
    const other = (request as { choices?: number[] }).choices!.find((c) => c !== shown)!;
    const answer = await deviceApi(m.portal, token, 'POST', `/api/v1/device/requests/${request.id}`, { decision: 'approve', number: other });
    assert.deepEqual(answer, { status: 200, json: { status: 'denied' } });
    await page.getByText('The sign-in was denied on your phone.').waitFor();
    await page.goto('/settings');
    await page.waitForURL((u) => u.pathname === '/');
    await page.getByRole('button', { name: 'Sign in' }).waitFor();
  });

  it('never lets one tap sign in two browsers: a second one waits, the same browser starts over, Cancel withdraws', async () => {
    const token = await enrol(m, 'ivy');
    // A tab of the same browser that still shows the sign-in form.
    const stale = await newPage();
    await stale.goto('/');
    const first = await stale.context().newPage();
    await signIn(first, 'ivy', pw('ivy'));
    const firstNumber = await first.getByTestId('match-number').textContent();
    const firstRequest = await waitForRequest(m.portal, token, (r) => r.type === 'login');

    const second = await newPage();
    await signIn(second, 'ivy', pw('ivy'));
    await second.getByText('Another sign-in from this address is waiting for your phone.').waitFor();
    assert.equal(await second.getByTestId('match-number').count(), 0);

    // The first browser signs in again from its other tab: its old request is withdrawn, a new one takes its place.
    await stale.getByLabel('User name').fill('ivy');
    await stale.getByLabel('Password').fill(pw('ivy'));
    await stale.getByRole('button', { name: 'Sign in' }).click();
    await stale.getByTestId('match-number').waitFor();
    const pending = (await deviceApi(m.portal, token, 'GET', '/api/v1/device/requests')).json as { requests: { id: string }[] };
    assert.equal(pending.requests.length, 1);
    assert.notEqual(pending.requests[0]?.id, firstRequest.id);
    const late = await deviceApi(m.portal, token, 'POST', `/api/v1/device/requests/${firstRequest.id}`, { decision: 'approve', number: Number(firstNumber) });
    assert.equal(late.status, 409, 'the withdrawn request approves nothing');

    await stale.getByRole('button', { name: 'Cancel' }).click();
    await stale.getByRole('button', { name: 'Sign in' }).waitFor();
    assert.deepEqual((await deviceApi(m.portal, token, 'GET', '/api/v1/device/requests')).json, { requests: [] }, 'Cancel cleared it from the phone');
  });

  it('the waiting page learns of the tap at once: its status request is held until the phone decides', async () => {
    const token = await enrol(m, 'gus');
    const page = await newPage();
    await signIn(page, 'gus', pw('gus'));
    const shown = Number(await page.getByTestId('match-number').textContent());
    // Nothing decided: the status request stays open.
    const { cookie, held } = await heldStatus(page, m.portal, '/signin/status');
    // Without ?wait=1, and a second held request of the same session: answered at once, as a poll.
    const quick = await raw(m.portal, 'GET', '/signin/status', { cookie, accept: 'application/json' });
    assert.deepEqual({ status: quick.status, json: JSON.parse(quick.text) as unknown }, { status: 200, json: { status: 'pending' } });
    const second = await raw(m.portal, 'GET', '/signin/status?wait=1', { cookie, accept: 'application/json' });
    assert.deepEqual(JSON.parse(second.text), { status: 'pending' });
    assert.equal(held.done(), false);

    const { status } = await pickOnPhone(m.portal, token, shown);
    assert.equal(status, 200);
    const answer = await held.result;
    assert.equal(answer.status, 200);
    assert.deepEqual(JSON.parse(answer.text), { status: 'approved', next: '/' });
    // The status answer signs nothing in (it could race a form post of the same page); loading / does.
    assert.doesNotMatch(String(answer.headers['set-cookie'] ?? ''), /mailotp-session=/);
    const load = await raw(m.portal, 'GET', '/', { cookie });
    assert.equal(load.status, 303);
    assert.equal(load.headers.location, '/settings');
    const fresh = String(load.headers['set-cookie'] ?? '').match(/__Host-mailotp-session=([^;]+)/)?.[1];
    assert.ok(fresh && `__Host-mailotp-session=${fresh}` !== cookie, 'a new session id once signed in');
    const settings = await raw(m.portal, 'GET', '/settings', { cookie: `__Host-mailotp-session=${fresh}` });
    assert.equal(settings.status, 200);
    assert.match(settings.text, /Signed in as gus/);
  });

  it('a held status request does not hold up shutdown: it is answered and the process exits', async () => {
    const token = await enrol(m, 'hal');
    const page = await newPage();
    await signIn(page, 'hal', pw('hal'));
    await page.getByTestId('match-number').waitFor();
    await waitForRequest(m.portal, token, (r) => r.type === 'login');
    const { held } = await heldStatus(page, m.portal, '/signin/status');
    // The held request would otherwise stay open for 25 s; shutdown must not wait for it.
    const code = await Promise.race([m.stop(), sleep(15_000).then(() => 'still running 15 s after SIGTERM')]);
    assert.equal(code, 0);
    const answer = await held.result;
    assert.deepEqual({ status: answer.status, json: JSON.parse(answer.text) as unknown }, { status: 200, json: { status: 'pending' } });
    // Not left as an idle keep-alive socket, which would hold the listener's close until the browser drops it.
    assert.equal(answer.headers.connection, 'close');
  });
});
