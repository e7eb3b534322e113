import assert from 'node:assert/strict';
import { generateKeyPairSync } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import type { CDPSession, Page } from 'playwright-core';
import { portalPassword, signIn, startPortalFixture, type PortalFixture } from './browser-kit.js';

const pw = portalPassword;

interface VirtualCredential {
  credentialId: string;
  isResidentCredential: boolean;
  rpId?: string;
  privateKey: string;
  userHandle?: string;
  signCount: number;
}

/** Chromium's virtual authenticator (CDP WebAuthn domain) on this page: a platform passkey that verifies the user. */
async function addAuthenticator(page: Page): Promise<{ cdp: CDPSession; id: string }> {
  const cdp = await page.context().newCDPSession(page);
  await cdp.send('WebAuthn.enable', { enableUI: false });
  const { authenticatorId } = await cdp.send('WebAuthn.addVirtualAuthenticator', {
    options: { protocol: 'ctap2', transport: 'internal', hasResidentKey: true, hasUserVerification: true, isUserVerified: true, automaticPresenceSimulation: true },
  });
  return { cdp, id: authenticatorId };
}

async function credentialsOf(a: { cdp: CDPSession; id: string }): Promise<VirtualCredential[]> {
  return (await a.cdp.send('WebAuthn.getCredentials', { authenticatorId: a.id })).credentials as VirtualCredential[];
}

const userShow = async (fx: PortalFixture, user: string) => {
  const r = await fx.m.cli(['user', 'show', user, '--json']);
  assert.equal(r.code, 0, r.stderr);
  return JSON.parse(r.stdout) as { methods: string[]; defaultMethod: string | null; passkeys: { name: string; createdAt: string; lastUsedAt: string | null }[] };
};

async function addPasskey(page: Page, name: string): Promise<void> {
  await page.getByLabel('Passkey name').fill(name);
  await page.getByRole('button', { name: 'Add a passkey' }).click();
  await page.getByText('Your passkey is added.').waitFor();
}

/** A JSON post from the page, with its CSRF token, as passkey.js makes them; the status it got. */
function postJson(page: Page, path: string, times = 1): Promise<number[]> {
  return page.evaluate<number[]>(
    `(async () => { const out = []; for (let i = 0; i < ${times}; i++) out.push((await fetch(${JSON.stringify(path)}, { method: 'POST', headers: { 'Content-Type': 'application/json', 'csrf-token': document.querySelector('meta[name="csrf-token"]').content }, body: '{}' })).status); return out; })()`,
  );
}

async function signOut(page: Page): Promise<void> {
  await page.getByRole('button', { name: 'Sign out' }).click();
  await page.waitForURL((u) => u.pathname === '/');
}

describe('passkeys in headless Chromium with its virtual authenticator (real Dovecot, real binary)', { timeout: 600_000 }, () => {
  let fx: PortalFixture;

  before(async () => {
    // No publicUrl: the RP ID and origin come from the Host the browser sends (localhost:<port>).
    fx = await startPortalFixture(['pia', 'quinn', 'rita'], 'https://localhost:0', { publicUrl: undefined });
  });
  after(async () => {
    await fx?.close();
  });

  it('registers a passkey, signs in with password + passkey, offers another method, removes it, and the removed passkey is gone from the sign-in', async () => {
    const page = await fx.newPage();
    const authenticator = await addAuthenticator(page);
    await signIn(page, 'pia', pw('pia'));
    await page.waitForURL('**/settings');
    const section = page.getByRole('region', { name: 'Passkeys' });
    await section.getByText('No passkey yet.', { exact: false }).waitFor();
    // The name field starts with the browser and OS.
    assert.match(await page.getByLabel('Passkey name').inputValue(), /^Chrome on Linux$/);
    await addPasskey(page, 'Work laptop');
    assert.deepEqual(await page.getByTestId('passkey-name').allTextContents(), ['Work laptop']);
    assert.equal((await credentialsOf(authenticator)).length, 1);
    let shown = await userShow(fx, 'pia');
    assert.deepEqual(shown.methods, ['passkey']);
    assert.equal(shown.passkeys[0]?.name, 'Work laptop');
    assert.equal(shown.passkeys[0]?.lastUsedAt, null);
    await fx.m.waitForLog((e) => e.event === 'passkey.registered' && e.user === 'pia');
    // A fallback, so that the second step has another method to offer.
    await page.getByRole('button', { name: 'Generate recovery codes' }).click();
    const codes = (await page.getByTestId('recovery-codes').getByRole('listitem').allTextContents()).map((c) => c.trim());
    await signOut(page);

    // Password, then the passkey (the default: the first method set up).
    await signIn(page, 'pia', pw('pia'));
    await page.getByRole('heading', { name: 'Sign in with a passkey' }).waitFor();
    await page.getByRole('button', { name: 'Continue with a passkey' }).click();
    await page.waitForURL('**/settings');
    shown = await userShow(fx, 'pia');
    assert.notEqual(shown.passkeys[0]?.lastUsedAt, null);
    assert.equal(await page.getByRole('row', { name: /Work laptop/ }).getByText('never').count(), 0);
    await fx.m.waitForLog((e) => e.event === 'passkey.used' && e.user === 'pia');
    await signOut(page);

    // "Use another method" lists the recovery code, not the passkey the page already offers.
    await signIn(page, 'pia', pw('pia'));
    await page.getByRole('button', { name: 'Use another method' }).click();
    assert.equal(await page.getByRole('button', { name: 'Passkey' }).count(), 0);
    await page.getByRole('button', { name: 'Recovery code' }).click();
    await page.getByLabel('Code', { exact: true }).fill(codes[0] ?? '');
    await page.getByRole('button', { name: 'Verify' }).click();
    await page.waitForURL('**/settings');
    // And back: from the choice, the passkey again.
    await signOut(page);
    await signIn(page, 'pia', pw('pia'));
    await page.getByRole('button', { name: 'Use another method' }).click();
    await page.getByRole('button', { name: 'Recovery code' }).click();
    await page.getByRole('button', { name: 'Use another method' }).click();
    await page.getByRole('button', { name: 'Passkey' }).click();
    await page.getByRole('button', { name: 'Continue with a passkey' }).click();
    await page.waitForURL('**/settings');

    // Remove it (this session passed a second factor).
    await page.getByRole('row', { name: /Work laptop/ }).getByRole('button', { name: 'Remove' }).click();
    await page.getByText('The passkey was removed.').waitFor();
    await fx.m.waitForLog((e) => e.event === 'passkey.removed' && e.user === 'pia');
    shown = await userShow(fx, 'pia');
    assert.deepEqual(shown.methods, ['recovery']);
    assert.deepEqual(shown.passkeys, []);
    await signOut(page);

    // The authenticator still holds the credential, but the sign-in no longer offers it.
    assert.equal((await credentialsOf(authenticator)).length, 1);
    await signIn(page, 'pia', pw('pia'));
    await page.getByRole('heading', { name: 'Enter a recovery code' }).waitFor();
    assert.equal(await page.getByRole('button', { name: 'Use another method' }).count(), 0);
    const refused = await postJson(page, '/signin/passkey/options');
    assert.deepEqual(refused, [401]);
  });

  it('refuses another authenticator holding the same credential id, a cloned authenticator whose counter went back, and changes from a session that passed no second factor', async () => {
    // Browser B signs in first, while quinn has no second factor: password only.
    const other = await fx.newPage();
    await signIn(other, 'quinn', pw('quinn'));
    await other.waitForURL('**/settings');

    const page = await fx.newPage();
    const mine = await addAuthenticator(page);
    await signIn(page, 'quinn', pw('quinn'));
    await page.waitForURL('**/settings');
    await addPasskey(page, 'Phone');

    // B's session passed no second factor: now that one exists it may neither add nor remove passkeys.
    await other.reload();
    const section = other.getByRole('region', { name: 'Passkeys' });
    await section.getByText('To change this, sign out and sign in again with your second factor.').waitFor();
    assert.equal(await other.getByRole('button', { name: 'Add a passkey' }).count(), 0);
    assert.equal(await other.getByRole('button', { name: 'Remove' }).count(), 0);
    const forged = await postJson(other, '/settings/passkeys/options');
    assert.deepEqual(forged, [403]);

    // Sign in once with the real passkey, so the server has seen its counter move.
    await signOut(page);
    await signIn(page, 'quinn', pw('quinn'));
    await page.getByRole('button', { name: 'Continue with a passkey' }).click();
    await page.waitForURL('**/settings');
    const [real] = await credentialsOf(mine);
    assert.ok(real);

    // B: an authenticator with a credential of the same id but another key pair (not the registered passkey).
    const theirs = await addAuthenticator(other);
    const { privateKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
    await theirs.cdp.send('WebAuthn.addCredential', {
      authenticatorId: theirs.id,
      credential: { ...real, privateKey: privateKey.export({ type: 'pkcs8', format: 'der' }).toString('base64'), signCount: real.signCount + 10 },
    });
    await signOut(other);
    await signIn(other, 'quinn', pw('quinn'));
    await other.getByRole('button', { name: 'Continue with a passkey' }).click();
    await other.getByText('That passkey was not accepted here.').waitFor();
    await fx.m.waitForLog((e) => e.event === 'web.second-factor-refused' && e.user === 'quinn' && e.method === 'passkey');
    assert.equal(new URL(other.url()).pathname, '/');

    // A copy of the real key whose counter is behind the one the server saw: refused as a clone.
    assert.ok(real.signCount > 0, 'the virtual authenticator counts its signatures');
    await theirs.cdp.send('WebAuthn.clearCredentials', { authenticatorId: theirs.id });
    await theirs.cdp.send('WebAuthn.addCredential', { authenticatorId: theirs.id, credential: { ...real, signCount: 0 } });
    await other.getByRole('button', { name: 'Continue with a passkey' }).click();
    await fx.m.waitForLog((e) => e.event === 'passkey.refused' && e.user === 'quinn' && e.why === 'counter');
    // The real one still works afterwards.
    await signOut(page);
    await signIn(page, 'quinn', pw('quinn'));
    await page.getByRole('button', { name: 'Continue with a passkey' }).click();
    await page.waitForURL('**/settings');

    // The admin's reset: the passkeys go, and with them every web session of the user.
    const reset = await fx.m.cli(['user', 'reset', 'quinn', '--passkeys']);
    assert.equal(reset.code, 0, reset.stderr);
    assert.match(reset.stdout, /Removed for quinn: passkeys; web sessions ended/);
    assert.deepEqual((await userShow(fx, 'quinn')).passkeys, []);
    await page.reload();
    await page.getByRole('button', { name: 'Sign in' }).waitFor();
    await signIn(page, 'quinn', pw('quinn'));
    await page.waitForURL('**/settings');
  });

  it('counts each refused passkey answer as a failed login, against the same limits as a wrong password', async () => {
    const page = await fx.newPage();
    await addAuthenticator(page);
    await signIn(page, 'rita', pw('rita'));
    await page.waitForURL('**/settings');
    await addPasskey(page, 'Key');
    await signOut(page);
    await signIn(page, 'rita', pw('rita'));
    await page.getByRole('button', { name: 'Continue with a passkey' }).click();
    await page.waitForURL('**/settings');
    await signOut(page);
    await signIn(page, 'rita', pw('rita'));
    await page.getByRole('heading', { name: 'Sign in with a passkey' }).waitFor();
    // limits.failedLoginsPerUser is 50 in the test config: 50 refusals, then the limit.
    const statuses = await postJson(page, '/signin/passkey/verify', 52);
    assert.deepEqual([...new Set(statuses.slice(0, 50))], [401]);
    assert.deepEqual(statuses.slice(50), [429, 429]);
    // The password sign-in of the same user is held back too: one counter for both.
    const fresh = await fx.newPage();
    await signIn(fresh, 'rita', pw('rita'));
    await fresh.getByText('Too many failed sign-ins. Wait a while and try again.').waitFor();
  });
});
