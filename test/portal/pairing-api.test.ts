import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import Fastify, { type FastifyInstance } from 'fastify';
import { PairingService } from '../../src/core/pairing-service.js';
import { silentLogger } from '../../src/log/logger.js';
import { registerPairingApi } from '../../src/portal/pairing-api.js';
import { fixture, type Fixture } from './portal-kit.js';

describe('pairing API (the phone side)', () => {
  let f: Fixture;
  let app: FastifyInstance;
  let pairing: PairingService;

  before(async () => {
    f = fixture();
    pairing = new PairingService(f.store, f.clock, f.devices, [], silentLogger());
    // As the portal server builds it: no type coercion in the JSON APIs.
    app = Fastify({ ajv: { customOptions: { coerceTypes: false } } });
    registerPairingApi(app, { pairing, logger: silentLogger() });
    await app.ready();
  });
  after(async () => {
    await app.close();
    await f.store.close();
  });

  it('hands out a code with or without a body, and the claim tells the phone when it is bound', async () => {
    const bare = await app.inject({ method: 'POST', url: '/api/v1/pairing/code' });
    assert.equal(bare.statusCode, 201, bare.body);
    const named = await app.inject({ method: 'POST', url: '/api/v1/pairing/code', payload: { name: 'Pixel 8' } });
    assert.equal(named.statusCode, 201);
    const { code, claim, expiresAt } = named.json<{ code: string; claim: string; expiresAt: string }>();
    assert.match(code, /^\d{9}$/);
    assert.equal(Date.parse(expiresAt) - f.clock.now(), 600_000);
    assert.equal(named.headers['cache-control'], 'no-store');
    assert.deepEqual((await app.inject({ method: 'GET', url: `/api/v1/pairing/code/${claim}` })).json(), { status: 'waiting', expiresAt });
    await pairing.bindByCode('alice', code);
    const bound = (await app.inject({ method: 'GET', url: `/api/v1/pairing/code/${claim}` })).json<{ status: string; token: string; user: string; deviceId: string }>();
    assert.deepEqual([bound.status, bound.user], ['bound', 'alice']);
    assert.equal((await f.devices.authenticate(bound.token))?.name, 'Pixel 8');
    assert.equal((await app.inject({ method: 'GET', url: `/api/v1/pairing/code/${claim}` })).statusCode, 404);
  });

  it('answers 404 to malformed and unknown secrets, 400 to bad bodies', async () => {
    for (const url of ['/api/v1/pairing/code/short', '/api/v1/pairing/link/short', `/api/v1/pairing/link/${'A'.repeat(43)}`]) {
      const r = await app.inject({ method: 'GET', url });
      assert.deepEqual([r.statusCode, r.json()], [404, { error: 'not-found' }], url);
    }
    const link = await pairing.startLink('bob');
    for (const payload of [{}, { number: '42' }, { number: 4.5 }, { number: 1, name: 'x'.repeat(65) }]) {
      const r = await app.inject({ method: 'POST', url: `/api/v1/pairing/link/${link.secret}`, payload });
      assert.equal(r.statusCode, 400, JSON.stringify(payload));
    }
    assert.equal((await app.inject({ method: 'POST', url: '/api/v1/pairing/code', payload: { name: 7 } })).statusCode, 400);
    // None of those used the link up.
    const right = await app.inject({ method: 'POST', url: `/api/v1/pairing/link/${link.secret}`, payload: { number: link.number } });
    assert.equal(right.statusCode, 200);
    assert.equal(right.json<{ user: string }>().user, 'bob');
  });

  it('limits new codes per client address', async () => {
    let last = 0;
    for (let i = 0; i < 40 && last !== 429; i++) last = (await app.inject({ method: 'POST', url: '/api/v1/pairing/code', remoteAddress: '192.0.2.77' })).statusCode;
    assert.equal(last, 429);
    assert.equal((await app.inject({ method: 'POST', url: '/api/v1/pairing/code', remoteAddress: '192.0.2.78' })).statusCode, 201);
  });
});
