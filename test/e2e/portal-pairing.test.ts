import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type { Page } from 'playwright-core';
import { heldStatus, pairingApi, raw, signIn, signInWithPhone, startPortalFixture, portalPassword, type PortalFixture } from './browser-kit.js';
import { deviceApi, enrol, type MailotpProcess } from './harness.js';

const pw = portalPassword;

// A Chromium per file on a shared machine: the file may take longer than one test's limit.
describe('portal pairing and clearing in headless Chromium (real Dovecot, real binary)', { timeout: 600_000 }, () => {
  let fx: PortalFixture;
  let m: MailotpProcess;
  const newPage = (opts: { locale?: string } = {}): Promise<Page> => fx.newPage(opts);
  const showJson = (user: string) => fx.showUser(user);
  /** Signs the user in (no phone yet) and presses Bind a phone: the link's secret and the number shown. */
  const startQrPairing = async (user: string): Promise<{ page: Page; secret: string; number: number }> => {
    const page = await newPage();
    await signIn(page, user, pw(user));
    await page.waitForURL('**/settings');
    await page.getByRole('button', { name: 'Bind a phone' }).click();
    const secret = String(await page.getByTestId('pair-link').getAttribute('href')).split('#pair=')[1]!;
    return { page, secret, number: Number(await page.getByTestId('match-number').textContent()) };
  };

  before(async () => {
    fx = await startPortalFixture(['cody', 'lina', 'wren', 'mona', 'nico']);
    m = fx.m;
  });
  after(async () => {
    await fx?.close();
  });

  it('binds a phone by the code it shows; the phone collects its token once', async () => {
    const made = await pairingApi(m.portal, 'POST', '/code', { name: 'Cody’s Pixel' });
    assert.equal(made.status, 201);
    const { code, claim } = made.json as { code: string; claim: string };
    assert.match(code, /^\d{9}$/);
    assert.equal(((await pairingApi(m.portal, 'GET', `/code/${claim}`)).json as { status: string }).status, 'waiting');

    const page = await newPage();
    await signIn(page, 'cody', pw('cody'));
    await page.waitForURL('**/settings');
    await page.getByLabel('Device verification code').fill('000 000 000');
    await page.getByRole('button', { name: 'Bind', exact: true }).click();
    await page.getByText('This code is unknown or has expired.').waitFor();
    await page.getByLabel('Device verification code').fill(`${code.slice(0, 3)} ${code.slice(3, 6)} ${code.slice(6)}`);
    await page.getByRole('button', { name: 'Bind', exact: true }).click();
    await page.getByText('Your phone is bound.').waitFor();
    assert.equal(await page.getByTestId('device-name').textContent(), 'Cody’s Pixel');

    const bound = await pairingApi(m.portal, 'GET', `/code/${claim}`);
    assert.equal(bound.status, 200);
    const { status, token, user } = bound.json as { status: string; token: string; user: string };
    assert.deepEqual([status, user], ['bound', 'cody']);
    assert.equal((await pairingApi(m.portal, 'GET', `/code/${claim}`)).status, 404, 'handed out exactly once');
    assert.equal((await deviceApi(m.portal, token, 'GET', '/api/v1/device/requests')).status, 200, 'the token works');
    await m.waitForLog((e) => e.event === 'device.bound' && e.user === 'cody');
  });

  it('binds a phone by the QR link: the desktop page moves on by itself when the right number is picked', async () => {
    const page = await newPage();
    await signIn(page, 'lina', pw('lina'));
    await page.waitForURL('**/settings');
    await page.getByRole('button', { name: 'Bind a phone' }).click();
    await page.getByRole('img', { name: 'Pairing QR code' }).waitFor();
    const link = String(await page.getByTestId('pair-link').getAttribute('href'));
    assert.match(link, /\/app\/#pair=[A-Za-z0-9_-]{43}$/);
    const secret = link.split('#pair=')[1]!;
    const number = Number(await page.getByTestId('match-number').textContent());

    const seen = await pairingApi(m.portal, 'GET', `/link/${secret}`);
    const { user, choices } = seen.json as { user: string; choices: number[] };
    assert.equal(user, 'lina');
    assert.equal(choices.length, 3);
    assert.ok(choices.includes(number));
    const answer = await pairingApi(m.portal, 'POST', `/link/${secret}`, { number, name: 'Lina’s iPhone' });
    assert.equal(answer.status, 200);
    assert.equal((answer.json as { user: string }).user, 'lina');
    await page.getByText('Your phone is bound.').waitFor();
    assert.equal(await page.getByTestId('device-name').textContent(), 'Lina’s iPhone');
    assert.equal((await pairingApi(m.portal, 'POST', `/link/${secret}`, { number })).status, 404, 'single-use');
  });

  it('the waiting settings page learns of the phone\'s answer at once: its status request is held until the phone picks', async () => {
    const { page, secret, number } = await startQrPairing('nico');
    // Nothing answered: the status request stays open.
    const { cookie, held } = await heldStatus(page, m.portal, '/settings/pair/status');
    const quick = await raw(m.portal, 'GET', '/settings/pair/status', { cookie, accept: 'application/json' });
    assert.deepEqual(JSON.parse(quick.text), { status: 'waiting' });
    const second = await raw(m.portal, 'GET', '/settings/pair/status?wait=1', { cookie, accept: 'application/json' });
    assert.deepEqual(JSON.parse(second.text), { status: 'waiting' }, 'a second held request of the session is answered at once');
    assert.equal(held.done(), false);

    assert.equal((await pairingApi(m.portal, 'POST', `/link/${secret}`, { number, name: 'Nico’s phone' })).status, 200);
    const answer = await held.result;
    assert.deepEqual({ status: answer.status, json: JSON.parse(answer.text) as unknown }, { status: 200, json: { status: 'bound', next: '/settings?done=bound' } });
    assert.equal((await showJson('nico')).device !== null, true);
  });

  it('voids a QR pairing when the phone picks the wrong number, and the page says so', async () => {
    const { page, secret, number } = await startQrPairing('wren');
    const { choices } = (await pairingApi(m.portal, 'GET', `/link/${secret}`)).json as { choices: number[] };
    const wrong = choices.find((c) => c !== number)!;
    const answer = await pairingApi(m.portal, 'POST', `/link/${secret}`, { number: wrong });
    assert.deepEqual(answer, { status: 409, json: { error: 'wrong-number' } });
    await page.getByText('A wrong number was picked on the phone').waitFor();
    await page.getByRole('link', { name: 'Start again' }).waitFor();
    assert.equal((await pairingApi(m.portal, 'POST', `/link/${secret}`, { number })).status, 404, 'the right number is too late');
    assert.equal((await showJson('wren')).device, null);
  });

  it('clears the bound phone only after confirming; the old token stops working and other sessions end', async () => {
    const token = await enrol(m, 'mona');
    const other = await newPage();
    await signInWithPhone(other, m.portal, token, 'mona', pw('mona'));
    const page = await newPage();
    await signInWithPhone(page, m.portal, token, 'mona', pw('mona'));

    await page.getByRole('button', { name: 'Clear bound device' }).click();
    await page.getByRole('heading', { name: 'Clear the bound phone?' }).waitFor();
    assert.equal((await deviceApi(m.portal, token, 'GET', '/api/v1/device/requests')).status, 200, 'nothing changed before confirming');
    await page.getByRole('button', { name: 'Yes, clear it' }).click();
    await page.getByText('The bound phone was cleared.').waitFor();
    await page.getByRole('button', { name: 'Bind a phone' }).waitFor();
    assert.equal((await deviceApi(m.portal, token, 'GET', '/api/v1/device/requests')).status, 401);
    await m.waitForLog((e) => e.event === 'device.removed' && e.user === 'mona');

    await other.goto('/settings');
    await other.waitForURL((u) => u.pathname === '/');
  });
});
