import assert from 'node:assert/strict';
import { Writable } from 'node:stream';
import { describe, it } from 'node:test';
import pino from 'pino';
import { FakeClock } from '../../../src/core/clock.js';
import { b64, type Behaviour, type Refusal, SESSION_SUITE } from '../../helpers/session-harness.js';
import { expectLoggedIn as loggedIn, withServer } from './imap-test-kit.js';
const AUTH_FAILED = 'NO [AUTHENTICATIONFAILED] Authentication failed.';

describe('imap session: the core answers', SESSION_SUITE, () => {
  const cases: [Refusal, string][] = [
    [{ kind: 'pending-timeout', requestId: 'r1' }, 'NO [UNAVAILABLE] Approve this connection on your phone, then retry.'],
    [{ kind: 'denied', requestId: 'r1' }, AUTH_FAILED],
    [{ kind: 'bad-password', reply: '[AUTHENTICATIONFAILED] Nope.\r\n* BYE injected' }, 'NO [AUTHENTICATIONFAILED] Nope. * BYE injected'],
    [{ kind: 'bad-password' }, AUTH_FAILED],
    [{ kind: 'no-device' }, 'NO [CONTACTADMIN] Two-factor approval is required but no device is bound; contact your administrator.'],
    [{ kind: 'rate-limited', limit: 'user' }, 'NO [UNAVAILABLE] Too many attempts, try again later.'],
    [{ kind: 'unavailable', reason: 'store down' }, 'NO [UNAVAILABLE] Temporary failure, please retry.'],
  ];

  it('maps every refusal to its exact reply and keeps the connection usable', async () => {
    const queue = cases.map(([r]) => r);
    await withServer({ behaviour: () => queue.shift() ?? { kind: 'aborted' }, limits: { maxFailedLoginsPerConnection: 10 } }, async ({ connect }) => {
      const c = await connect();
      await c.next();
      for (const [i, [, reply]] of cases.entries()) {
        c.write(`t${i} LOGIN alice secret\r\n`);
        assert.equal(await c.next(), `t${i} ${reply}`);
      }
      c.write('z NOOP\r\n');
      assert.equal(await c.next(), 'z OK NOOP completed');
    });
  });

  it('approved: tagged OK with the upstream text made safe, then splice', async () => {
    const behaviour: Behaviour = (_a, v) => {
      if (v.kind !== 'ok') throw new Error('verify failed');
      return { kind: 'approved', session: v.session, reason: 'not-required' };
    };
    await withServer({ behaviour, loginResponseText: '[CAPABILITY IMAP4rev1 IDLE] Logged in\r\n* injected' }, async ({ connect }) => {
      const c = await connect();
      await c.next();
      c.write('a LOGIN alice secret\r\n');
      assert.equal(await c.next(), 'a OK [CAPABILITY IMAP4rev1 IDLE] Logged in * injected');
    });
  });

  it('a throwing core is a temporary refusal', async () => {
    await withServer({ behaviour: () => Promise.reject(new Error('boom')) }, async ({ connect }) => {
      const c = await connect();
      await c.next();
      c.write('a LOGIN alice secret\r\n');
      assert.equal(await c.next(), 'a NO [UNAVAILABLE] Temporary failure, please retry.');
    });
  });

  it('sends a progress line every progressInterval while the login is held, and none after', async () => {
    const clock = new FakeClock();
    let tap!: () => void;
    let held!: () => void;
    const holding = new Promise<void>((resolve) => (held = resolve));
    const behaviour: Behaviour = async (attempt, v) => {
      attempt.onHold?.();
      attempt.onHold?.();
      held();
      await new Promise<void>((resolve) => (tap = resolve));
      return v.kind === 'ok' ? { kind: 'approved', session: v.session, reason: 'tap' } : { kind: 'aborted' };
    };
    await withServer({ behaviour, scheduler: clock, progressIntervalMs: 50 }, async ({ connect }) => {
      const c = await connect();
      await c.next();
      c.write('a LOGIN alice secret\r\n');
      await holding;
      assert.equal(clock.pending, 1, 'held: the progress timer runs (one, though onHold came twice), the idle timer does not');
      clock.advance(50);
      assert.equal(await c.next(), '* OK Waiting for approval on your phone');
      clock.advance(100);
      assert.deepEqual([await c.next(), await c.next()], ['* OK Waiting for approval on your phone', '* OK Waiting for approval on your phone']);
      tap();
      const lines = await loggedIn(c);
      assert.equal(lines.length, 1, 'nothing but the answer after the tap');
      assert.equal(clock.pending, 0, 'the progress timer stopped with the answer');
    });
  });

  it('aborts the wait when the client disconnects, and ends an upstream handed over too late', async () => {
    let signalAborted: Promise<void> | undefined;
    const behaviour: Behaviour = async (attempt, v) => {
      attempt.onHold?.();
      const signal = attempt.signal;
      if (!signal) throw new Error('no signal');
      signalAborted = new Promise((resolve) => signal.addEventListener('abort', () => resolve()));
      await signalAborted;
      // A core racing the abort may still approve: the session must close that upstream.
      return v.kind === 'ok' ? { kind: 'approved', session: v.session, reason: 'tap' } : { kind: 'aborted' };
    };
    await withServer({ behaviour }, async ({ connect, h, sessions }) => {
      const c = await connect();
      await c.next();
      c.write('a LOGIN alice secret\r\n');
      assert.equal(await c.next(), '* OK Waiting for approval on your phone');
      c.destroy();
      await signalAborted;
      assert.equal(h.attempts[0]?.signal?.aborted, true);
      assert.equal(h.upstreamLogins[0]?.signal.aborted, true);
      await Promise.all(sessions);
      assert.equal(h.upstreams[0]?.closed, true);
      assert.equal(h.splices.length, 0);
    });
  });
});

describe('imap session: logging', SESSION_SUITE, () => {
  it('never logs the password, even at trace', async () => {
    const out: string[] = [];
    const stream = new Writable({
      write(chunk: Buffer, _enc, cb) {
        out.push(chunk.toString());
        cb();
      },
    });
    const logger = pino({ level: 'trace' }, stream);
    await withServer({ logger, behaviour: () => ({ kind: 'denied', requestId: 'r' }) }, async ({ connect }) => {
      const c = await connect();
      await c.next();
      c.write('a LOGIN alice hunter2pw\r\nb LOGON alice hunter2pw\r\n');
      c.write(`c AUTHENTICATE PLAIN ${b64('\0alice\0hunter2pw')}\r\nd AUTHENTICATE LOGIN\r\n`);
      await c.until('+');
      c.write(`${b64('alice')}\r\n`);
      await c.next();
      c.write(`${b64('hunter2pw')}\r\n`);
      await c.until('d ');
    });
    const text = out.join('');
    assert.match(text, /a LOGIN alice \*\*\*/);
    assert.match(text, /"command":"AUTHENTICATE"/);
    assert.doesNotMatch(text, /hunter2pw/);
    assert.doesNotMatch(text, new RegExp(b64('hunter2pw').replace(/=+$/, '')));
    assert.doesNotMatch(text, new RegExp(b64('\0alice\0hunter2pw').slice(0, 12)));
  });
});
