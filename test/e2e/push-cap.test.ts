import assert from 'node:assert/strict';
import { after, describe, it } from 'node:test';
import { startDovecot, type DovecotHandle } from '../helpers/dovecot.js';
import { startRedisServer, type RedisServerHandle } from '../helpers/redis-server.js';
import { decide, startMailotp, waitForRequest, type MailotpProcess } from './harness.js';
import { bindDevice, RawPop3 } from './pop3-kit.js';

const TEMP = 'NO [UNAVAILABLE] Approve this connection on your phone, then retry.';

/** IMAP LOGIN as alice from `src` on a fresh connection; the tagged reply and the lines before it. */
async function login(port: number, src: string): Promise<string[]> {
  const c = await RawPop3.secure(port, src);
  try {
    await c.until(/^\* OK/);
    c.write('a1 LOGIN alice alice-pass-1\r\n');
    return await c.until(/^a1 /);
  } finally {
    c.destroy();
  }
}

/**
 * Issue 8's reproduction: pushesPerUserPerHour 1, holdTime 3s. The first login times out; a second
 * one from the same address must wait on the same request (it pushes nothing), and a tap during that
 * wait lets it in. A login from another address would be a new push, and is refused at the cap.
 */
async function capScenario(first: MailotpProcess, second: MailotpProcess, token: string): Promise<void> {
  assert.equal((await login(first.imaps, '127.0.0.2')).at(-1), `a1 ${TEMP}`);
  const retry = login(second.imaps, '127.0.0.2');
  await second.waitForLog((e) => e.event === 'request.joined' && e.clientIp === '127.0.0.2');
  const req = await waitForRequest(second.portal, token);
  assert.equal((await decide(second.portal, token, req.id, 'approve')).status, 200);
  assert.match((await retry).at(-1)!, /^a1 OK /);
  assert.equal((await login(second.imaps, '127.0.0.3')).at(-1), 'a1 NO [UNAVAILABLE] Too many attempts, try again later.');
  const opened = [...new Set([first, second])].flatMap((p) => p.events().filter((e) => e.event === 'request.opened'));
  assert.equal(opened.length, 1, 'one push for the whole scenario');
}

describe('the push cap counts new pushes only (real binary, SQLite and Redis)', { concurrency: 1 }, () => {
  const stops: (() => Promise<unknown>)[] = [];
  /** One Dovecot for both cases, started by whichever asks first. */
  let dovecot: Promise<DovecotHandle> | undefined;
  const daemonOtp = { enforce: 'bound', holdTime: '3s' };
  const limits = { pushesPerUserPerHour: 1 };
  const shared = () => (dovecot ??= startDovecot());
  after(async () => {
    for (const stop of stops.reverse()) await stop();
    await (await dovecot)?.stop();
  });

  it('SQLite: a retry from the same address waits on the pending request at the cap, and a tap lets it in', async () => {
    const d = await shared();
    const m = await startMailotp({ dovecot: d, daemonOtp, limits });
    stops.push(() => m.stop());
    await capScenario(m, m, await bindDevice(m, 'alice'));
  });

  it('Redis, two instances: the retry on the other instance joins the request the first one opened', async () => {
    const [d, redis] = await Promise.all([shared(), startRedisServer()]);
    stops.push(() => (redis as RedisServerHandle).stop());
    const store = { driver: 'redis', url: redis.url, keyPrefix: `cap${process.pid}:` };
    const [a, b] = await Promise.all([startMailotp({ dovecot: d, store, daemonOtp, limits }), startMailotp({ dovecot: d, store, daemonOtp, limits })]);
    stops.push(() => a.stop(), () => b.stop());
    await capScenario(a, b, await bindDevice(a, 'alice'));
  });
});
