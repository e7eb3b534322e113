import assert from 'node:assert/strict';
import { Writable } from 'node:stream';
import { afterEach, describe, it } from 'node:test';
import { AuditTrail } from '../../src/core/audit-trail.js';
import { FakeClock } from '../../src/core/clock.js';
import { MailotpError } from '../../src/core/errors.js';
import { AuditTee } from '../../src/log/audit-tee.js';
import { createLogger, type Logger } from '../../src/log/logger.js';
import { SqliteStore } from '../../src/stores/sqlite-store.js';
import type { Store } from '../../src/core/ports/store.js';

const DAY = 86_400_000;

/** A logger at `level` teed into a trail over `store`, with its own lines kept as parsed JSON. */
function teed(store: Store, level = 'info', retentionMs = 90 * DAY) {
  const lines: Record<string, unknown>[] = [];
  const out = new Writable({
    write(chunk: Buffer, _enc, done) {
      for (const l of chunk.toString().split('\n')) if (l) lines.push(JSON.parse(l) as Record<string, unknown>);
      done();
    },
  });
  const clock = new FakeClock();
  const tee = new AuditTee();
  const logger: Logger = createLogger({ level, destination: out, audit: tee });
  const trail = new AuditTrail(store, clock, logger.child({ component: 'audit' }), { retentionMs }, clock);
  tee.attach((event, fields) => trail.record(event, fields));
  return { logger, trail, clock, lines };
}

const stores: Store[] = [];
function sqlite(): SqliteStore {
  const s = new SqliteStore({ path: ':memory:' });
  stores.push(s);
  return s;
}
afterEach(async () => {
  for (const s of stores.splice(0)) await s.close();
});

describe('AuditTrail', () => {
  it('keeps the log\'s audit events in the store, redacted as on the log, and nothing else', async () => {
    const { logger, trail, lines } = teed(sqlite());
    const log = logger.child({ user: 'alice', clientIp: '203.0.113.7', protocol: 'imap', cid: 'c1' });
    log.info({ event: 'login.held', requestId: 'r1', password: 'hunter2', token: 'tok-123', nested: { secret: 's3' } }, 'login held');
    log.info({ requestId: 'r1' }, 'an ordinary line');
    log.info({ event: 'not.an.audit.event' }, 'unknown name');
    await trail.flush();
    const [e, ...more] = await trail.query({ sinceMs: DAY, limit: 10 });
    assert.deepEqual(more, []);
    assert.equal(e?.event, 'login.held');
    assert.equal(e?.user, 'alice');
    assert.deepEqual(e?.fields, { clientIp: '203.0.113.7', protocol: 'imap', cid: 'c1', requestId: 'r1', password: '[redacted]', token: '[redacted]', nested: { secret: '[redacted]' } });
    // The same event is on the log.
    assert.ok(lines.some((l) => l.event === 'login.held' && l.password === '[redacted]'));
    const stored = JSON.stringify(await trail.query({ sinceMs: DAY, limit: 10 }));
    for (const s of ['hunter2', 'tok-123', 's3']) assert.ok(!stored.includes(s), `${s} was stored`);
  });

  it('stores info events when the log itself is set to warn', async () => {
    const { logger, trail, lines } = teed(sqlite(), 'warn');
    logger.info({ event: 'login.approved', user: 'bob', reason: 'trusted-network' }, 'login approved');
    await trail.flush();
    assert.deepEqual(lines, []);
    assert.deepEqual((await trail.query({ sinceMs: DAY, limit: 10 })).map((e) => [e.event, e.user, e.fields.reason]), [['login.approved', 'bob', 'trusted-network']]);
  });

  it('trims entries past audit.retention (fake clock)', async () => {
    const { logger, trail, clock } = teed(sqlite(), 'info', 90 * DAY);
    logger.info({ event: 'login.denied', user: 'alice' }, 'old');
    await trail.flush();
    clock.advance(91 * DAY);
    logger.info({ event: 'login.approved', user: 'alice', reason: 'tap' }, 'new');
    await trail.flush();
    assert.deepEqual((await trail.query({ user: 'alice', sinceMs: 1000 * DAY, limit: 10 })).map((e) => e.event), ['login.approved']);
  });

  it('never throws or waits on a failing store: the entries are dropped with one warning per streak', async () => {
    const store = sqlite();
    const failing = Object.create(store) as Store;
    let down = true;
    failing.appendAudit = async (...args) => {
      if (down) throw new MailotpError('MAILOTP_ERR_STORE_UNAVAILABLE', 'sqlite store: disk I/O error');
      return store.appendAudit(...args);
    };
    const { logger, trail, lines } = teed(failing);
    for (let i = 0; i < 3; i++) {
      // record() returns at once; the write happens after this turn of the event loop.
      logger.info({ event: 'login.approved', user: 'alice', reason: 'tap', i }, 'approved');
      await trail.flush();
    }
    const warnings = lines.filter((l) => l.msg === 'could not write the audit trail to the store; entries stay on the log only');
    assert.equal(warnings.length, 1);
    assert.equal(warnings[0]?.err, 'sqlite store: disk I/O error');
    down = false;
    logger.info({ event: 'login.approved', user: 'alice', reason: 'tap', i: 3 }, 'approved');
    await trail.flush();
    assert.ok(lines.some((l) => l.msg === 'audit trail written to the store again' && l.lost === 3));
    assert.deepEqual((await trail.query({ sinceMs: DAY, limit: 10 })).map((e) => e.fields.i), [3]);
  });

  it('keeps at most maxQueued entries waiting, dropping the oldest', async () => {
    const store = sqlite();
    const trail = new AuditTrail(store, new FakeClock(), createLogger({ level: 'silent' }), { retentionMs: DAY, maxQueued: 3 });
    for (let i = 0; i < 5; i++) trail.record('login.held', { user: 'u', i });
    await trail.flush();
    assert.deepEqual((await trail.query({ sinceMs: DAY, limit: 10 })).map((e) => e.fields.i), [2, 3, 4]);
  });

  it('writes a burst of events in one store write, 50 ms after the first, with no flush (fake clock)', async () => {
    const store = sqlite();
    const writes: number[] = [];
    const counting = Object.create(store) as Store;
    counting.appendAudit = (entries, ...rest) => {
      writes.push(entries.length);
      return store.appendAudit(entries, ...rest);
    };
    const { logger, trail, clock } = teed(counting);
    for (let i = 0; i < 3; i++) logger.info({ event: 'login.approved', user: 'alice', reason: 'tap', i }, 'approved');
    clock.advance(49);
    await new Promise((r) => setImmediate(r));
    assert.deepEqual(writes, []);
    clock.advance(1);
    await new Promise((r) => setImmediate(r));
    assert.deepEqual(writes, [3]);
    assert.deepEqual((await trail.query({ sinceMs: DAY, limit: 10 })).map((e) => e.fields.i), [0, 1, 2]);
  });
});
