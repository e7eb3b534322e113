import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { startDovecot, type DovecotHandle } from '../helpers/dovecot.js';
import { startRedisServer, type RedisServerHandle } from '../helpers/redis-server.js';
import { decide, enrol, imapClient, startMailotp, waitForRequest, type MailotpProcess } from './harness.js';

describe('several instances on one Redis', () => {
  let dovecot: DovecotHandle;
  let redis: RedisServerHandle;
  let a: MailotpProcess;
  let b: MailotpProcess;
  let token: string;

  before(async () => {
    [dovecot, redis] = await Promise.all([startDovecot(), startRedisServer()]);
    const store = { driver: 'redis', url: redis.url, keyPrefix: `e2e${process.pid}:` };
    // recheck polling is 2 s; holdTime 20 s leaves room, and the release must come from pub/sub to be fast.
    [a, b] = await Promise.all([
      startMailotp({ dovecot, store, daemonOtp: { holdTime: '20s' } }),
      startMailotp({ dovecot, store, daemonOtp: { holdTime: '20s' } }),
    ]);
    token = await enrol(a, 'alice');
  });
  after(async () => {
    await Promise.all([a?.stop(), b?.stop()]);
    await Promise.all([redis?.stop(), dovecot?.stop()]);
  });

  it('a tap received by instance B releases the login held by instance A', async () => {
    const client = imapClient(a.imaps, 'alice', 'alice-pass-1', { localAddress: '127.0.0.2' });
    const connecting = client.connect();
    const req = await waitForRequest(b.portal, token);
    const tapped = Date.now();
    assert.equal((await decide(b.portal, token, req.id, 'approve')).status, 200);
    await connecting;
    assert.ok(Date.now() - tapped < 1500, 'released by pub/sub, not by a poll');
    await client.logout();
    // Both instances see the approval window.
    const viaB = imapClient(b.imaps, 'alice', 'alice-pass-1', { localAddress: '127.0.0.2' });
    await viaB.connect();
    await viaB.logout();
  });

  it('refuses with a temporary error while Redis is down and recovers by itself when it is back', async () => {
    await redis.stop();
    try {
      const client = imapClient(a.imaps, 'alice', 'alice-pass-1', { localAddress: '127.0.0.3' });
      const err = (await client.connect().then(
        () => null,
        (e: unknown) => e,
      )) as { serverResponseCode?: string } | null;
      assert.ok(err, 'must not log in while the store is down');
      assert.equal(err.serverResponseCode, 'UNAVAILABLE');
      // Even inside an approval window (127.0.0.2), mailotp cannot check it and refuses.
      const inWindow = imapClient(a.imaps, 'alice', 'alice-pass-1', { localAddress: '127.0.0.2' });
      const err2 = (await inWindow.connect().then(
        () => null,
        (e: unknown) => e,
      )) as { serverResponseCode?: string } | null;
      assert.equal(err2?.serverResponseCode, 'UNAVAILABLE');
    } finally {
      await redis.restart();
    }
    // The restarted Redis is empty (no persistence): bind the device again, then the same running
    // instance A must serve a full approve cycle, which proves its store connection came back.
    const end = Date.now() + 15_000;
    while ((await a.cli(['user', 'show', 'alice', '--json'])).code !== 0) {
      if (Date.now() > end) assert.fail('Redis did not come back');
      await new Promise((r) => setTimeout(r, 200));
    }
    token = await enrol(a, 'alice');
    for (;;) {
      const c = imapClient(a.imaps, 'alice', 'alice-pass-1', { localAddress: '127.0.0.4' });
      const connecting = c.connect().then(
        () => 'ok',
        (e: { serverResponseCode?: string }) => e.serverResponseCode ?? 'error',
      );
      const req = await waitForRequest(a.portal, token, () => true, 3000).catch(() => null);
      if (req) {
        await decide(a.portal, token, req.id, 'approve');
        assert.equal(await connecting, 'ok');
        await c.logout();
        break;
      }
      assert.equal(await connecting, 'UNAVAILABLE', 'until it recovers, refusals stay temporary');
      c.close();
      if (Date.now() > end) assert.fail('mailotp did not recover after Redis came back');
      await new Promise((r) => setTimeout(r, 300));
    }
  });
});
