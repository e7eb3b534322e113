import assert from 'node:assert/strict';
import { afterEach, describe, it } from 'node:test';
import { WebSessionService } from '../../src/core/web-session-service.js';
import { silentLogger } from '../../src/log/logger.js';
import { coreFixture, type CoreFixture } from './core-fixture.js';

const HOUR = 3_600_000;
let fx: CoreFixture | null = null;
afterEach(async () => {
  await fx?.close();
  fx = null;
});

function setup(): { f: CoreFixture; sessions: WebSessionService } {
  const f = coreFixture();
  fx = f;
  return { f, sessions: new WebSessionService(f.store, f.clock, silentLogger(), { ttlMs: 12 * HOUR, pendingTtlMs: 600_000 }) };
}

describe('WebSessionService', () => {
  it('finds a session by its id until it expires or is ended', async () => {
    const { f, sessions } = setup();
    const a = await sessions.create('alice', 'signed-in', 'none');
    assert.equal((await sessions.get(a.sid))?.user, 'alice');
    assert.equal(await sessions.get(undefined), null);
    assert.equal(await sessions.get('not a session id'), null);
    await sessions.end(a.sid);
    assert.equal(await sessions.get(a.sid), null);

    const b = await sessions.create('alice', 'signed-in', 'none');
    f.clock.advance(12 * HOUR);
    assert.equal(await sessions.get(b.sid), null);
    const pending = await sessions.create('alice', 'second-factor', 'none');
    f.clock.advance(600_000);
    assert.equal(await sessions.get(pending.sid), null, 'the second step has ten minutes');
  });

  it('completes the second step under a new id', async () => {
    const { sessions } = setup();
    const pending = await sessions.create('alice', 'second-factor', 'none', { login: { requestId: 'r1', matchNumber: 42 } });
    const done = await sessions.complete(pending.sid, pending.session, 'phone');
    assert.notEqual(done.sid, pending.sid);
    assert.equal(await sessions.get(pending.sid), null);
    const s = await sessions.get(done.sid);
    assert.deepEqual([s?.stage, s?.factor, s?.login], ['signed-in', 'phone', undefined]);
  });

  it('ends every session of one user at once, except the one kept, and later sessions work', async () => {
    const { sessions } = setup();
    const a = await sessions.create('alice', 'signed-in', 'phone');
    const b = await sessions.create('alice', 'signed-in', 'phone');
    const bob = await sessions.create('bob', 'signed-in', 'none');
    await sessions.endAll('alice', a);
    assert.ok(await sessions.get(a.sid));
    assert.equal(await sessions.get(b.sid), null);
    assert.ok(await sessions.get(bob.sid));
    const c = await sessions.create('alice', 'signed-in', 'none');
    assert.ok(await sessions.get(c.sid));
    await sessions.endAll('alice');
    assert.equal(await sessions.get(a.sid), null);
    assert.equal(await sessions.get(c.sid), null);
  });
});
