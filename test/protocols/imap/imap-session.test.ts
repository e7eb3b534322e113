import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { connectPlain, upgradeClient } from '../../helpers/line-client.js';
import { b64, sleep, type Behaviour, SESSION_SUITE } from '../../helpers/session-harness.js';
import { expectLoggedIn, LOGIN_TEXT, withServer } from './imap-test-kit.js';

const AUTH_FAILED = 'NO [AUTHENTICATIONFAILED] Authentication failed.';
const IMPLICIT_CAPS = 'IMAP4rev1 ENABLE IDLE ID LITERAL+ SASL-IR AUTH=PLAIN AUTH=LOGIN';

const loggedIn = expectLoggedIn;

describe('imap session: greeting and capabilities', SESSION_SUITE, () => {
  it('greets with the filtered capability list on an implicit TLS port (session does the handshake)', async () => {
    await withServer({}, async ({ connect }) => {
      const c = await connect();
      assert.equal(await c.next(), `* OK [CAPABILITY ${IMPLICIT_CAPS}] mailotp ready.`);
      c.write('a CAPABILITY\r\n');
      assert.deepEqual(await c.until('a '), [`* CAPABILITY ${IMPLICIT_CAPS}`, 'a OK CAPABILITY completed']);
      c.write('b NOOP\r\nc LOGOUT\r\n');
      assert.deepEqual(await c.until('c '), ['b OK NOOP completed', '* BYE Logging out', 'c OK LOGOUT completed']);
      await c.expectClosed();
    });
  });

  it('accepts a socket a tls.Server already secured', async () => {
    await withServer({ kind: 'tls' }, async ({ connect, h }) => {
      const c = await connect();
      assert.equal(await c.next(), `* OK [CAPABILITY ${IMPLICIT_CAPS}] mailotp ready.`);
      c.write('a LOGIN alice secret\r\n');
      await loggedIn(c);
      assert.equal(h.splices.length, 1);
    });
  });

  it('answers ID locally and passes the client name on', async () => {
    await withServer({}, async ({ connect, h }) => {
      const c = await connect();
      await c.next();
      c.write('a ID ("name" "Thunderbird" "version" "115.0")\r\n');
      assert.deepEqual(await c.until('a '), ['* ID ("name" "mailotp")', 'a OK ID completed']);
      c.write('b ID NIL\r\nc ID (name)\r\nd LOGIN alice secret\r\n');
      assert.deepEqual(await c.until('c '), ['* ID ("name" "mailotp")', 'b OK ID completed', 'c BAD Invalid ID arguments']);
      await loggedIn(c, 'd');
      assert.equal(h.attempts[0]?.clientName, 'Thunderbird');
      assert.equal(h.upstreamLogins[0]?.client.name, 'Thunderbird');
      assert.equal(h.attempts[0]?.protocol, 'imap');
      assert.equal(h.attempts[0]?.clientIp, '127.0.0.1');
    });
  });

  it('refuses other commands before login', async () => {
    await withServer({}, async ({ connect }) => {
      const c = await connect();
      await c.next();
      c.write('a SELECT INBOX\r\nb LOGIN "open\r\nc STARTTLS\r\n NOOP\r\nd NOOP\r\n');
      assert.deepEqual(await c.until('d '), [
        'a BAD Command not valid before login',
        'b BAD Unterminated quoted string',
        'c BAD STARTTLS not available',
        '* BAD Missing or invalid tag',
        'd OK NOOP completed',
      ]);
    });
  });
});

describe('imap session: STARTTLS', SESSION_SUITE, () => {
  it('refuses login in clear, advertises LOGINDISABLED, then allows it after TLS', async () => {
    await withServer({ mode: 'starttls' }, async ({ connect, h }) => {
      let c = await connect();
      const greeting = await c.next();
      assert.equal(greeting, '* OK [CAPABILITY IMAP4rev1 ENABLE IDLE ID LITERAL+ SASL-IR STARTTLS LOGINDISABLED] mailotp ready.');
      assert.doesNotMatch(greeting, /AUTH=/);
      c.write(`a LOGIN alice secret\r\nb AUTHENTICATE PLAIN ${b64('\0alice\0secret')}\r\nc AUTHENTICATE LOGIN\r\n`);
      assert.deepEqual(await c.until('c '), [
        'a NO [PRIVACYREQUIRED] Use STARTTLS first.',
        'b NO [PRIVACYREQUIRED] Use STARTTLS first.',
        'c NO [PRIVACYREQUIRED] Use STARTTLS first.',
      ]);
      c.write('d STARTTLS\r\n');
      assert.equal(await c.next(), 'd OK Begin TLS negotiation now');
      c = await upgradeClient(c);
      c.write('e CAPABILITY\r\nf STARTTLS\r\n');
      assert.deepEqual(await c.until('f '), [
        `* CAPABILITY ${IMPLICIT_CAPS}`,
        'e OK CAPABILITY completed',
        'f BAD STARTTLS not available',
      ]);
      c.write('g LOGIN alice secret\r\n');
      await loggedIn(c, 'g');
      assert.equal(h.attempts.length, 1);
    });
  });

  it('discards plaintext the client sent after STARTTLS before the handshake', async () => {
    await withServer({ mode: 'starttls' }, async ({ connect, h }) => {
      let c = await connect();
      await c.next();
      c.write('a STARTTLS\r\nb LOGIN alice secret\r\nc CAPABILITY\r\n');
      assert.equal(await c.next(), 'a OK Begin TLS negotiation now');
      c = await upgradeClient(c);
      c.write('d NOOP\r\n');
      assert.equal(await c.next(), 'd OK NOOP completed');
      assert.deepEqual(c.rest(), []);
      assert.equal(h.attempts.length, 0);
      assert.equal(h.upstreamLogins.length, 0);
    });
  });

  it('plaintext sent after the STARTTLS reply goes to the handshake, never to the command reader', async () => {
    await withServer({ mode: 'starttls' }, async ({ port, h, sessions }) => {
      const c = await connectPlain(port);
      await c.next();
      c.write('a STARTTLS\r\n');
      assert.equal(await c.next(), 'a OK Begin TLS negotiation now');
      c.write('b LOGIN alice secret\r\nc NOOP\r\n');
      await c.expectClosed();
      assert.deepEqual(c.rest(), []);
      await Promise.all(sessions);
      assert.equal(h.attempts.length, 0);
    });
  });

  it('permits login in clear when the admin chose tls: none', async () => {
    await withServer({ mode: 'none' }, async ({ connect }) => {
      const c = await connect();
      assert.equal(await c.next(), `* OK [CAPABILITY ${IMPLICIT_CAPS}] mailotp ready.`);
      c.write('a LOGIN alice secret\r\n');
      await loggedIn(c);
    });
  });
});

describe('imap session: LOGIN and AUTHENTICATE', SESSION_SUITE, () => {
  it('LOGIN with quoted strings and escapes', async () => {
    await withServer({}, async ({ connect, h }) => {
      const c = await connect();
      await c.next();
      c.write('a LOGIN "alice@example.com" "pa\\"ss\\\\word"\r\n');
      await loggedIn(c);
      assert.equal(h.attempts[0]?.user, 'alice@example.com');
      assert.equal(h.attempts[0]?.password, 'pa"ss\\word');
      assert.deepEqual(
        { user: h.upstreamLogins[0]?.user, password: h.upstreamLogins[0]?.password },
        { user: 'alice@example.com', password: 'pa"ss\\word' },
      );
    });
  });

  it('LOGIN with synchronising literals gets a continuation for each', async () => {
    await withServer({}, async ({ connect, h }) => {
      const c = await connect();
      await c.next();
      c.write('a LOGIN {5}\r\n');
      assert.equal(await c.next(), '+ Ready for literal data');
      c.write('alice {9}\r\n');
      assert.equal(await c.next(), '+ Ready for literal data');
      c.write('s3cr t"\\x\r\n');
      await loggedIn(c);
      assert.equal(h.attempts[0]?.password, 's3cr t"\\x');
    });
  });

  it('LOGIN with non-synchronising literals sends no continuation', async () => {
    await withServer({}, async ({ connect, h }) => {
      const c = await connect();
      await c.next();
      c.write('a LOGIN {5+}\r\nalice {6+}\r\nsecret\r\n');
      const lines = await loggedIn(c);
      assert.deepEqual(lines, [`a OK ${LOGIN_TEXT}`]);
      assert.equal(h.attempts[0]?.user, 'alice');
    });
  });

  it('AUTHENTICATE PLAIN with SASL-IR and with a continuation; authzid must match', async () => {
    await withServer({}, async ({ connect, h }) => {
      const c = await connect();
      await c.next();
      c.write(`a AUTHENTICATE PLAIN ${b64('bob\0alice\0secret')}\r\nb authenticate plain\r\n`);
      assert.deepEqual(await c.until('+'), ['a NO [AUTHORIZATIONFAILED] Authorization failed.', '+ ']);
      c.write(`${b64('alice\0alice\0secret')}\r\n`);
      await loggedIn(c, 'b');
      assert.equal(h.attempts.length, 1);
      assert.equal(h.attempts[0]?.user, 'alice');
      assert.equal(h.attempts[0]?.password, 'secret');
    });
    await withServer({}, async ({ connect, h }) => {
      const c = await connect();
      await c.next();
      c.write(`a AUTHENTICATE PLAIN ${b64('\0alice\0secret')}\r\n`);
      await loggedIn(c);
      assert.equal(h.attempts[0]?.password, 'secret');
    });
  });

  it('AUTHENTICATE LOGIN prompts for user name and password', async () => {
    await withServer({}, async ({ connect, h }) => {
      const c = await connect();
      await c.next();
      c.write('a AUTHENTICATE Login\r\n');
      assert.equal(await c.next(), '+ VXNlcm5hbWU6');
      c.write(`${b64('alice')}\r\n`);
      assert.equal(await c.next(), '+ UGFzc3dvcmQ6');
      c.write(`${b64('secret')}\r\n`);
      await loggedIn(c);
      assert.equal(h.attempts[0]?.user, 'alice');
      assert.equal(h.attempts[0]?.password, 'secret');
    });
  });

  it('AUTHENTICATE: "*" cancels, bad base64 and unknown mechanisms are refused', async () => {
    await withServer({}, async ({ connect, h }) => {
      const c = await connect();
      await c.next();
      c.write('a AUTHENTICATE PLAIN\r\n');
      assert.equal(await c.next(), '+ ');
      c.write('*\r\n');
      assert.equal(await c.next(), 'a BAD Authentication cancelled');
      c.write('b AUTHENTICATE LOGIN\r\n');
      assert.equal(await c.next(), '+ VXNlcm5hbWU6');
      c.write('not base64!\r\n');
      assert.equal(await c.next(), 'b BAD Invalid base64');
      c.write('c AUTHENTICATE PLAIN abc\r\nd AUTHENTICATE CRAM-MD5\r\ne AUTHENTICATE PLAIN =\r\nf NOOP\r\n');
      assert.deepEqual(await c.until('f '), [
        'c BAD Invalid base64',
        'd NO Unsupported authentication mechanism',
        `e ${AUTH_FAILED}`,
        'f OK NOOP completed',
      ]);
      assert.equal(h.attempts.length, 0);
    });
  });

  it('refuses control characters, empty names and NUL without asking the core', async () => {
    await withServer({ limits: { maxFailedLoginsPerConnection: 10 } }, async ({ connect, h }) => {
      const c = await connect();
      await c.next();
      c.write('a LOGIN {5+}\r\nal\x01ce secret\r\n');
      c.write('b LOGIN {6+}\r\nalice\x7f secret\r\n');
      c.write('c LOGIN "" secret\r\n');
      c.write('d LOGIN alice {4+}\r\nx\0yz\r\n');
      c.write(`e AUTHENTICATE PLAIN ${b64('\0al\nice\0secret')}\r\n`);
      c.write('f LOGIN alice "x\0y"\r\n');
      c.write('g LOGIN alice ""\r\n');
      assert.deepEqual(await c.until('g '), [
        `a ${AUTH_FAILED}`,
        `b ${AUTH_FAILED}`,
        `c ${AUTH_FAILED}`,
        `d ${AUTH_FAILED}`,
        `e ${AUTH_FAILED}`,
        'f BAD Invalid character in quoted string',
        `g ${AUTH_FAILED}`,
      ]);
      assert.equal(h.attempts.length, 0);
    });
  });

  it('pipelined commands after LOGIN reach splice untouched', async () => {
    const hold: Behaviour = async (attempt, v) => {
      await sleep(100);
      assert.equal(v.kind, 'ok');
      return v.kind === 'ok' ? { kind: 'approved', session: v.session, reason: 'approval' } : { kind: 'aborted' };
    };
    await withServer({ behaviour: hold }, async ({ connect, h }) => {
      const c = await connect();
      await c.next();
      c.write('a LOGIN alice secret\r\nb SELECT INBOX\r\nc APPEND x {3}\r\n');
      await sleep(30);
      c.write('abc\r\nd IDLE\r\n');
      await loggedIn(c);
      assert.equal(h.splices[0]?.clientBuffered.toString('latin1'), 'b SELECT INBOX\r\nc APPEND x {3}\r\nabc\r\nd IDLE\r\n');
      assert.equal(h.splices[0]?.upstreamBuffered.toString('latin1'), '* upstream-extra\r\n');
      assert.equal(h.splices[0]?.upstream, h.upstreams[0]?.socket);
      assert.equal(h.upstreams[0]?.closed, false);
    });
  });
});
