import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { FakeClock } from '../../src/core/clock.js';
import { silentLogger } from '../../src/log/logger.js';
import { PortalServer } from '../../src/portal/portal-server.js';
import { RedisStore } from '../../src/stores/redis-store.js';
import { startRedisServer, type RedisServerHandle } from '../helpers/redis-server.js';
import { call, type Target } from './portal-kit.js';
import { coreFixture } from '../core/core-fixture.js';

/** Two instances' portals on one Redis: the bad-token brake is one count for both. */
describe('device API bad-token brake across instances', () => {
  let redis: RedisServerHandle;
  const stores: RedisStore[] = [];
  const portals: PortalServer[] = [];
  const targets: Target[] = [];
  let token = '';
  // At the start of a minute, so that the whole test stays in one counter window.
  const clock = new FakeClock(Date.UTC(2026, 0, 1, 12));

  before(async () => {
    redis = await startRedisServer();
    for (let i = 0; i < 2; i++) {
      const store = new RedisStore({ url: redis.url, keyPrefix: 'mailotp-brake:' });
      stores.push(store);
      const logger = silentLogger();
      const { approvals, devices, requests } = coreFixture({ store, clock });
      const portal = new PortalServer({ settings: { host: '127.0.0.1', port: 0, tls: false, enabled: true }, tls: null, devices, requests, approvals, ping: () => store.ping(), logger, clock });
      portals.push(portal);
      targets.push({ port: (await portal.listen()).port });
      if (i === 0) {
        const bound = await devices.bind('alice', 'Phone', false);
        if (bound.status !== 'bound') throw new Error('not bound');
        token = bound.token;
      }
    }
  });

  after(async () => {
    for (const p of portals) await p.close();
    for (const s of stores) await s.close();
    await redis?.stop();
  });

  test('failures on either instance add up; a valid token passes on both', async () => {
    const [a, b] = targets as [Target, Target];
    for (let i = 0; i < 10; i++) assert.equal((await call(a, 'GET', '/api/v1/device/requests', { token: `bad-a${i}` })).status, 401);
    for (let i = 0; i < 10; i++) assert.equal((await call(b, 'GET', '/api/v1/device/requests', { token: `bad-b${i}` })).status, 401);
    assert.equal((await call(a, 'GET', '/api/v1/device/requests', { token: 'bad-21' })).status, 429);
    assert.equal((await call(b, 'GET', '/api/v1/device/requests', { token: 'bad-22' })).status, 429);
    assert.equal((await call(a, 'GET', '/api/v1/device/requests', { token })).status, 200);
    assert.equal((await call(b, 'GET', '/api/v1/device/requests', { token })).status, 200);
  });
});
