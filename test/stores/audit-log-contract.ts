import assert from 'node:assert/strict';
import { afterEach, beforeEach, describe, it } from 'node:test';
import { FakeClock } from '../../src/core/clock.js';
import type { AuditEntry, Store } from '../../src/core/ports/store.js';
import type { MakeStore } from './store-contract.js';

const HOUR = 3_600_000;
const DAY = 24 * HOUR;

/** The audit trail's part of the store contract, run against SQLite and Redis alike. */
export function auditLogContract(name: string, make: MakeStore): void {
  describe(`Store contract, audit trail: ${name}`, () => {
    let store: Store;
    let cleanup: () => Promise<void>;
    let clock: FakeClock;
    const entry = (event: string, user: string | undefined, fields: Record<string, unknown> = {}): AuditEntry => ({
      at: clock.now(),
      event,
      ...(user !== undefined ? { user } : {}),
      fields,
    });

    beforeEach(async () => {
      ({ store, cleanup } = await make());
      clock = new FakeClock();
    });
    afterEach(async () => {
      await cleanup();
    });

    it('keeps entries whole and returns them oldest first, by user or all', async () => {
      const a = entry('login.held', 'alice', { clientIp: '203.0.113.7', protocol: 'imap', requestId: 'r1', nested: { n: 1 } });
      await store.appendAudit([a], clock.now(), 90 * DAY);
      clock.advance(1000);
      const b = entry('approval.revoked', 'bob', { count: 2 });
      const c = entry('connection.refused', undefined, { clientIp: '198.51.100.1' });
      // Two entries of the same millisecond keep their order.
      const d = entry('login.approved', 'alice', { reason: 'tap' });
      await store.appendAudit([b, c, d], clock.now(), 90 * DAY);

      const since = clock.now() - HOUR;
      assert.deepEqual(await store.readAudit({ since, limit: 100 }, clock.now(), 90 * DAY), [a, b, c, d]);
      assert.deepEqual(await store.readAudit({ user: 'alice', since, limit: 100 }, clock.now(), 90 * DAY), [a, d]);
      assert.deepEqual(await store.readAudit({ user: 'carol', since, limit: 100 }, clock.now(), 90 * DAY), []);
      // --since: only the last second's entries; --limit: the newest ones.
      assert.deepEqual(await store.readAudit({ since: clock.now(), limit: 100 }, clock.now(), 90 * DAY), [b, c, d]);
      assert.deepEqual(await store.readAudit({ since, limit: 2 }, clock.now(), 90 * DAY), [c, d]);
    });

    it('keeps a user name as it is given: no folding, no escaping tricks', async () => {
      const odd = entry('login.approved', 'Ünïcode:user*?[x]', { reason: 'approval' });
      await store.appendAudit([odd, entry('login.approved', 'ünïcode:user*?[x]')], clock.now(), DAY);
      assert.deepEqual(await store.readAudit({ user: 'Ünïcode:user*?[x]', since: 0, limit: 10 }, clock.now(), DAY), [odd]);
    });

    it('drops entries older than the retention on the next append, and never returns them', async () => {
      const old = entry('login.approved', 'alice', { reason: 'tap' });
      await store.appendAudit([old], clock.now(), 90 * DAY);
      clock.advance(89 * DAY);
      const recent = entry('login.denied', 'alice');
      await store.appendAudit([recent], clock.now(), 90 * DAY);
      assert.deepEqual(await store.readAudit({ user: 'alice', since: 0, limit: 10 }, clock.now(), 90 * DAY), [old, recent]);

      // Past the retention the old entry is out of every answer before any append trims it...
      clock.advance(2 * DAY);
      assert.deepEqual(await store.readAudit({ since: 0, limit: 10 }, clock.now(), 90 * DAY), [recent]);
      // ...and gone from the store after the next one: a longer retention does not bring it back.
      const next = entry('login.held', 'bob');
      await store.appendAudit([next], clock.now(), 90 * DAY);
      assert.deepEqual(await store.readAudit({ since: 0, limit: 10 }, clock.now(), 1000 * DAY), [recent, next]);
      assert.deepEqual(await store.readAudit({ user: 'alice', since: 0, limit: 10 }, clock.now(), 1000 * DAY), [recent]);
    });
  });
}
