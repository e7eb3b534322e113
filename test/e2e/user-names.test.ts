import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { systemClock } from '../../src/core/clock.js';
import { DeviceService } from '../../src/core/device-service.js';
import { UserNames } from '../../src/core/user-names.js';
import { silentLogger } from '../../src/log/logger.js';
import { createStore } from '../../src/stores/create-store.js';
import { DOVEADM_BIN, startDovecot, type DovecotHandle } from '../helpers/dovecot.js';
import { startRedisServer, type RedisServerHandle } from '../helpers/redis-server.js';
import { decide, enrol, imapClient, startMailotp, waitForRequest, type MailotpProcess } from './harness.js';
import { AUTH_FAILED, LOGIN_FORMS, loginOnce, RawTlsLines, SUCCESS, type LoginForm } from './login-forms-kit.js';

const run = promisify(execFile);
const formNamed = (name: string): LoginForm => {
  const f = LOGIN_FORMS.find((x) => x.name === name);
  if (!f) throw new Error(`no login form ${name}`);
  return f;
};
const IMAP_LOGIN_ATOM = formNamed('IMAP LOGIN atom');
const IMAP_LOGIN_LITERAL = formNamed('IMAP LOGIN literal');
const POP3_USER_PASS = formNamed('POP3 USER/PASS');
const SMTP_AUTH_PLAIN = formNamed('SMTP AUTH PLAIN');
const PASS = 'alice-pass-1';
/** Every form opens its own request for alice: more than the default 10 pushes an hour. */
const MANY_PUSHES = { pushesPerUserPerHour: 100 };

function portOf(m: MailotpProcess, form: LoginForm): number {
  return form.protocol === 'imap' ? m.imaps : form.protocol === 'pop3' ? m.pop3s : m.smtps;
}

/**
 * Every login form, in parallel, each from its own address: the first spelling is held for alice's
 * phone (the request says user "alice"), the tap lets it in, and then the second spelling from the
 * same address gets in at once, on the approval made under the first.
 */
async function everyFormHoldsForAlice(m: MailotpProcess, token: string, net: string, spellings: readonly [string, string][]): Promise<void> {
  await Promise.all(
    LOGIN_FORMS.map(async (form, i) => {
      const ip = `${net}.${10 + i}`;
      const [first, second] = spellings[i % spellings.length] ?? ['alice', 'alice'];
      const held = loginOnce(form, portOf(m, form), ip, first, PASS);
      const req = await waitForRequest(m.portal, token, (r) => r.clientIp === ip, 20_000);
      assert.equal(req.user, 'alice', `${form.name}: ${first}`);
      assert.equal(req.protocol, form.protocol);
      assert.equal((await decide(m.portal, token, req.id, 'approve')).status, 200);
      assert.match(await held, SUCCESS[form.protocol], `${form.name} as ${first}`);
      const again = await loginOnce(form, portOf(m, form), ip, second, PASS);
      assert.match(again, SUCCESS[form.protocol], `${form.name} as ${second} on the approval for ${first}`);
    }),
  );
  // One request per address: the second spellings opened none. Only these addresses: the other
  // tests of the suite run beside this one, from other addresses of the same net.
  const ips = new Set(LOGIN_FORMS.map((_, i) => `${net}.${10 + i}`));
  const opened = m.events().filter((e) => e.event === 'request.opened' && ips.has(String(e.clientIp)));
  assert.equal(opened.length, LOGIN_FORMS.length);
  assert.ok(opened.every((e) => e.user === 'alice'));
}

/** Deny, then retry on the same IMAP connection under another spelling: refused at once, no new push. */
async function denyRetryDeny(m: MailotpProcess, token: string, ip: string): Promise<void> {
  const c = await RawTlsLines.connect(m.imaps, ip);
  try {
    await c.until(/^\* OK/);
    c.write(`a LOGIN alice ${PASS}\r\n`);
    const req = await waitForRequest(m.portal, token, (r) => r.clientIp === ip);
    assert.equal((await decide(m.portal, token, req.id, 'deny')).status, 200);
    assert.match(await c.until(/^a /), AUTH_FAILED.imap);
    const t0 = Date.now();
    c.write(`b LOGIN ALICE ${PASS}\r\n`);
    assert.match(await c.until(/^b /), /^b NO \[AUTHENTICATIONFAILED\]/);
    assert.ok(Date.now() - t0 < 5000, 'refused at once, not held');
    // A wrong password stays a wrong password (the upstream's own refusal).
    c.write('c LOGIN alice wrong-password\r\n');
    assert.match(await c.until(/^c /), /^c NO \[AUTHENTICATIONFAILED\]/);
  } finally {
    c.close();
  }
  await m.waitForLog((e) => e.event === 'login.denied' && e.reason === 'deny-cooldown' && e.clientIp === ip);
  assert.equal(m.events().filter((e) => e.event === 'request.opened' && e.clientIp === ip).length, 1);
  // POP3 from that address is cooled down too.
  assert.match(await loginOnce(POP3_USER_PASS, m.pop3s, ip, 'Alice', PASS), AUTH_FAILED.pop3);
}

/** "This wasn't me" on an SMTP login: denied, logged as reported, and IMAP from there is refused at once. */
async function reportCoolsDown(m: MailotpProcess, token: string, ip: string): Promise<void> {
  const held = loginOnce(SMTP_AUTH_PLAIN, m.smtps, ip, 'alice', PASS);
  const req = await waitForRequest(m.portal, token, (r) => r.clientIp === ip);
  const r = await decide(m.portal, token, req.id, 'report');
  assert.equal(r.status, 200);
  assert.deepEqual(r.json, { status: 'denied' });
  assert.match(await held, AUTH_FAILED.smtp);
  await m.waitForLog((e) => e.event === 'request.reported' && e.requestId === req.id);
  assert.match(await loginOnce(IMAP_LOGIN_ATOM, m.imaps, ip, 'ALICE', PASS), AUTH_FAILED.imap);
  await m.waitForLog((e) => e.event === 'login.denied' && e.reason === 'report-cooldown' && e.clientIp === ip);
}

describe('user names and push fatigue end to end', { concurrency: 3 }, () => {
  describe('one canonical identity against Dovecot with auth_username_format %Lu', () => {
    let dovecot: DovecotHandle;
    let m: MailotpProcess;
    let token: string;

    before(async () => {
      dovecot = await startDovecot({ usernameFormat: '%Lu' });
      m = await startMailotp({ dovecot, daemonOtp: { holdTime: '20s' }, limits: MANY_PUSHES });
      // The CLI canonicalises too: ALICE binds alice.
      token = await enrol(m, 'ALICE');
    });
    after(async () => {
      await m?.stop();
      await dovecot?.stop();
    });

    it('the CLI binds and shows the canonical name', async () => {
      const shown = await m.cli(['user', 'show', 'Alice', '--json']);
      assert.equal(shown.code, 0, shown.stderr);
      const doc = JSON.parse(shown.stdout) as { user: string; daemonOtp: boolean; device: unknown };
      assert.equal(doc.user, 'alice');
      assert.equal(doc.daemonOtp, true);
      assert.notEqual(doc.device, null);
      const bad = await m.cli(['user', 'show', 'ali\u200bce']);
      assert.equal(bad.code, 1);
      assert.match(bad.stderr, /invalid user name/);
    });

    it('every spelling Dovecot takes for alice is alice here too (doveadm auth test)', async () => {
      const names = new UserNames({ caseSensitive: false, stripDomain: false });
      const candidates = ['alice', 'ALICE', 'Alice', 'aLiCe', 'ＡＬＩＣＥ', 'ALİCE', 'alıce', 'alice ', ' alice', 'alice@x'];
      let accepted = 0;
      for (const typed of candidates) {
        const r = await run(DOVEADM_BIN, ['-c', dovecot.configFile, 'auth', 'test', '-x', 'service=imap', typed, PASS]).then(
          (x) => x.stdout,
          () => '',
        );
        if (!/auth succeeded/.test(r)) continue;
        accepted++;
        const c = names.canonical(typed);
        assert.equal(c.ok && c.name, 'alice', JSON.stringify(typed));
      }
      assert.equal(accepted, 4, 'Dovecot %Lu folds ASCII case only');
    });

    it('ALICE, "Alice", a literal, every SASL form, POP3 and SMTP are held for alice’s phone; one tap covers all spellings', async () => {
      await everyFormHoldsForAlice(m, token, '127.0.1', [
        ['ALICE', 'alice'],
        ['Alice', 'aLiCe'],
        ['aLICE', 'ALICE'],
      ]);
    });

    it('imapflow as ALICE is held too', async () => {
      const client = imapClient(m.imaps, 'ALICE', PASS, { localAddress: '127.0.1.99' });
      const connecting = client.connect();
      const req = await waitForRequest(m.portal, token, (r) => r.clientIp === '127.0.1.99');
      assert.equal(req.user, 'alice');
      await decide(m.portal, token, req.id, 'approve');
      await connecting;
      await client.logout();
    });

    it('AUTHENTICATE PLAIN as someone else (authzid ≠ authcid) is refused without a request', async () => {
      for (const authzid of ['bob', 'alice']) {
        const c = await loginOnce(
          {
            name: 'authzid',
            protocol: 'imap',
            async login(conn, u, p) {
              conn.write(`a AUTHENTICATE PLAIN ${Buffer.from(`${authzid}\0${u}\0${p}`).toString('base64')}\r\n`);
              return conn.until(/^a (OK|NO|BAD)/);
            },
          },
          m.imaps,
          '127.0.1.98',
          'ALICE',
          PASS,
        );
        assert.match(c, /^a NO \[AUTHORIZATIONFAILED\]/);
      }
      assert.equal(m.events().filter((e) => e.event === 'request.opened' && e.clientIp === '127.0.1.98').length, 0);
    });

    it('a name that cannot be an account is a failed login, not a question to the upstream', async () => {
      const reply = await loginOnce(IMAP_LOGIN_LITERAL, m.imaps, '127.0.1.97', 'ali\u200bce', PASS);
      assert.match(reply, AUTH_FAILED.imap);
      await m.waitForLog((e) => e.event === 'login.bad-password' && e.reason === 'invalid-user-name' && e.clientIp === '127.0.1.97');
    });

    it('deny, retry, deny on one IMAP connection: the retry is refused at once, with no new push', async () => {
      await denyRetryDeny(m, token, '127.0.1.90');
    });

    it('"this wasn\'t me" denies, cools the address down for reportCooldown and is logged as request.reported', async () => {
      await reportCoolsDown(m, token, '127.0.1.91');
    });
  });

  describe('one canonical identity against Dovecot with %Ln and users.stripDomain', () => {
    let dovecot: DovecotHandle;
    let m: MailotpProcess;
    let token: string;

    before(async () => {
      dovecot = await startDovecot({ usernameFormat: '%Ln' });
      m = await startMailotp({ dovecot, daemonOtp: { holdTime: '20s' }, users: { stripDomain: true }, limits: MANY_PUSHES });
      token = await enrol(m, 'alice@example.com');
    });
    after(async () => {
      await m?.stop();
      await dovecot?.stop();
    });

    it('alice@anything in every form is held for alice’s phone; one tap covers every domain', async () => {
      await everyFormHoldsForAlice(m, token, '127.0.2', [
        ['alice@anything', 'ALICE'],
        ['Alice@Example.COM', 'alice@elsewhere.example'],
        ['ALICE', 'alice@x@y'],
      ]);
    });
  });

  describe('start-up merge and the forms against Redis', () => {
    let dovecot: DovecotHandle;
    let redis: RedisServerHandle;
    let m: MailotpProcess;

    before(async () => {
      [dovecot, redis] = await Promise.all([startDovecot({ usernameFormat: '%Lu' }), startRedisServer()]);
    });
    after(async () => {
      await m?.stop();
      await Promise.all([redis?.stop(), dovecot?.stop()]);
    });

    it('records written under another spelling are merged at start-up, then every form is held for that phone', async () => {
      const store = { driver: 'redis', url: redis.url, keyPrefix: `names${process.pid}:` };
      // What an install from before canonical names left behind: a switch and a device under "Alice".
      const old = await createStore({ driver: 'redis', url: redis.url, keyPrefix: store.keyPrefix });
      let token: string;
      try {
        await old.setDaemonOtp('Alice', true, Date.now());
        const bound = await new DeviceService(old, systemClock, silentLogger()).bind('Alice', 'Old phone', false);
        assert.equal(bound.status, 'bound');
        token = bound.status === 'bound' ? bound.token : '';
      } finally {
        await old.close();
      }
      m = await startMailotp({ dovecot, store, daemonOtp: { holdTime: '20s' }, limits: MANY_PUSHES });
      const merged = await m.waitForLog((e) => e.event === 'users.merged', 30_000);
      assert.equal(merged.from, 'Alice');
      assert.equal(merged.to, 'alice');
      assert.equal(merged.device, 'moved');
      await everyFormHoldsForAlice(m, token, '127.0.3', [
        ['alice', 'ALICE'],
        ['ALICE', 'Alice'],
      ]);
      // The cool-downs live in Redis too.
      await denyRetryDeny(m, token, '127.0.3.90');
      await reportCoolsDown(m, token, '127.0.3.91');
    });
  });
});
