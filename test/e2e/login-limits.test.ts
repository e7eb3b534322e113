import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { startDovecot, type DovecotHandle } from '../helpers/dovecot.js';
import { startRedisServer, type RedisServerHandle } from '../helpers/redis-server.js';
import { rawImapLogin } from './raw-client.js';
import { decide, enrol, imapClient, startMailotp, waitForRequest, type MailotpProcess } from './harness.js';

/** The numbers: 10 failed logins per user and 30 per IP per 15 minutes. */
const LIMITS = { failedLoginsPerUser: 10, failedLoginsPerIp: 30, maxConnectionsPerIp: 1000 };
const UPSTREAM_REFUSAL = /^a NO \[AUTHENTICATIONFAILED\]/;
const MAILOTP_REFUSAL = /^a NO \[UNAVAILABLE\] Too many attempts/;

/** The n-th loopback address of a block (127.B.x.y): a distinct client address for each connection. */
const addr = (block: number, n: number): string => `127.${block}.${1 + (n >> 8)}.${n & 255}`;

/** Fires all the logins at once; how many got the upstream's refusal, mailotp's, or something else. */
async function burst(logins: { port: number; ip: string; user: string }[]): Promise<{ upstream: number; mailotp: number; other: string[] }> {
  const replies = await Promise.all(logins.map((l) => rawImapLogin(l.port, l.ip, l.user, 'wrong-password')));
  return {
    upstream: replies.filter((r) => UPSTREAM_REFUSAL.test(r)).length,
    mailotp: replies.filter((r) => MAILOTP_REFUSAL.test(r)).length,
    other: replies.filter((r) => !UPSTREAM_REFUSAL.test(r) && !MAILOTP_REFUSAL.test(r)),
  };
}

/** Failed password checks Dovecot logged for the user (auth_verbose). */
function dovecotFailures(dovecot: DovecotHandle, user: string): number {
  return dovecot.readLog().split('\n').filter((l) => l.includes(`(${user},`) && /Password mismatch|unknown user/.test(l)).length;
}

async function settledDovecotFailures(dovecot: DovecotHandle, user: string): Promise<number> {
  // Dovecot's log process writes asynchronously: wait until the count stops moving.
  let last = -1;
  for (;;) {
    const n = dovecotFailures(dovecot, user);
    if (n === last) return n;
    last = n;
    await new Promise((r) => setTimeout(r, 300));
  }
}

describe('failed-login limits under a concurrent burst (real Dovecot, real binary)', () => {
  let dovecot: DovecotHandle;
  let redis: RedisServerHandle;
  let single: MailotpProcess;
  let a: MailotpProcess;
  let b: MailotpProcess;

  before(async () => {
    [dovecot, redis] = await Promise.all([startDovecot(), startRedisServer()]);
    const store = { driver: 'redis', url: redis.url, keyPrefix: `e2e-limits${process.pid}:` };
    [single, a, b] = await Promise.all([
      startMailotp({ dovecot, limits: LIMITS, logLevel: 'info' }),
      startMailotp({ dovecot, store, limits: LIMITS, logLevel: 'info' }),
      startMailotp({ dovecot, store, limits: LIMITS, logLevel: 'info' }),
    ]);
  });
  after(async () => {
    await Promise.all([single?.stop(), a?.stop(), b?.stop()]);
    await Promise.all([redis?.stop(), dovecot?.stop()]);
  });

  it('300 wrong passwords for one user from 300 addresses at once: at most 10 reach Dovecot', async () => {
    const r = await burst(Array.from({ length: 300 }, (_, i) => ({ port: single.imaps, ip: addr(1, i), user: 'alice' })));
    console.log(`one instance, 300 addresses, one user: ${r.upstream} reached Dovecot, ${r.mailotp} refused by mailotp`);
    assert.deepEqual(r.other, []);
    assert.equal(r.upstream + r.mailotp, 300);
    assert.ok(r.upstream <= 10, `${r.upstream} reached the upstream`);
    assert.equal(await settledDovecotFailures(dovecot, 'alice'), r.upstream, 'Dovecot saw exactly those');
  });

  it('300 wrong passwords for 300 users from one address at once: at most 30 reach Dovecot', async () => {
    const r = await burst(Array.from({ length: 300 }, (_, i) => ({ port: single.imaps, ip: '127.2.0.1', user: `nobody${i}` })));
    console.log(`one instance, one address, 300 users: ${r.upstream} reached Dovecot, ${r.mailotp} refused by mailotp`);
    // 30 concurrent password checks can time out against a loaded Dovecot: a temporary refusal is the
    // fail-closed answer for those, never an OK and never a crash.
    assert.deepEqual(r.other.filter((l) => !/^a NO \[UNAVAILABLE\] Temporary failure/.test(l)), []);
    assert.ok(r.upstream <= 30, `${r.upstream} reached the upstream`);
  });

  it('two instances on one Redis share the counters: 150 + 150 at once, at most 10 reach Dovecot', async () => {
    const logins = Array.from({ length: 300 }, (_, i) => ({ port: i % 2 ? a.imaps : b.imaps, ip: addr(3, i), user: 'bob' }));
    const r = await burst(logins);
    console.log(`two instances, 300 addresses, one user: ${r.upstream} reached Dovecot, ${r.mailotp} refused by mailotp`);
    assert.deepEqual(r.other, []);
    assert.ok(r.upstream <= 10, `${r.upstream} reached the upstream`);
    assert.equal(await settledDovecotFailures(dovecot, 'bob'), r.upstream);
  });
});

describe('addresses known for the user are not locked out by others (real Dovecot, real binary)', () => {
  let dovecot: DovecotHandle;
  let m: MailotpProcess;
  let token: string;

  before(async () => {
    dovecot = await startDovecot();
    m = await startMailotp({ dovecot, limits: LIMITS });
    token = await enrol(m, 'alice');
  });
  after(async () => {
    await m?.stop();
    await dovecot?.stop();
  });

  const login = async (user: string, password: string, ip: string): Promise<string> => {
    const c = imapClient(m.imaps, user, password, { localAddress: ip });
    try {
      await c.connect();
      await c.logout();
      return 'OK';
    } catch (err) {
      const e = err as { serverResponseCode?: string; response?: string };
      return `${e.serverResponseCode ?? '?'} ${e.response ?? String(err)}`;
    }
  };

  it('ten wrong passwords from ten other addresses: approved and previously successful addresses still get in, unknown ones not', async () => {
    // alice (two-factor) is approved from 127.4.0.1; carol (no two-factor) logs in from 127.4.0.2.
    const held = login('alice', 'alice-pass-1', '127.4.0.1');
    const req = await waitForRequest(m.portal, token);
    assert.equal((await decide(m.portal, token, req.id, 'approve')).status, 200);
    assert.equal(await held, 'OK');
    assert.equal(await login('carol', 'carol-pass-3', '127.4.0.2'), 'OK');

    for (let i = 0; i < 10; i++) {
      assert.match(await rawImapLogin(m.imaps, `127.4.1.${i}`, 'alice', 'guess'), UPSTREAM_REFUSAL);
      assert.match(await rawImapLogin(m.imaps, `127.4.2.${i}`, 'carol', 'guess'), UPSTREAM_REFUSAL);
    }
    assert.equal(await login('alice', 'alice-pass-1', '127.4.0.1'), 'OK', 'the approved address');
    assert.equal(await login('carol', 'carol-pass-3', '127.4.0.2'), 'OK', 'the previously successful address');
    assert.match(await login('alice', 'alice-pass-1', '127.4.3.1'), /^UNAVAILABLE .*Too many attempts/, 'an unknown address');
    assert.match(await login('carol', 'carol-pass-3', '127.4.3.1'), /^UNAVAILABLE .*Too many attempts/);
    await m.waitForLog((e) => e.event === 'login.rate-limited' && e.limit === 'user' && e.clientIp === '127.4.3.1');
  });
});
