import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { clientExtensions, ehloReply } from '../../../src/protocols/smtp/smtp-extensions.js';

/** What Dovecot submission says to a TLS client before AUTH. */
const DOVECOT = ['8BITMIME', 'AUTH PLAIN LOGIN', 'BURL imap', 'CHUNKING', 'ENHANCEDSTATUSCODES', 'SIZE', 'PIPELINING', 'XCLIENT ADDR PORT PROTO HELO LOGIN SESSION TTL TIMEOUT FORWARD'];
/** A Postfix submission port, STARTTLS not yet done. */
const POSTFIX = ['PIPELINING', 'SIZE 10240000', 'VRFY', 'ETRN', 'STARTTLS', 'AUTH PLAIN LOGIN', 'AUTH=PLAIN LOGIN', 'ENHANCEDSTATUSCODES', '8BITMIME', 'DSN', 'SMTPUTF8', 'CHUNKING', 'XCLIENT NAME ADDR PROTO HELO', 'XFORWARD NAME ADDR'];

const TLS = { mode: 'implicit', secure: true } as const;

describe('smtp extensions offered to clients', () => {
  it("keeps the upstream's transaction extensions and replaces its AUTH, STARTTLS and proxy hooks", () => {
    assert.deepEqual(clientExtensions(DOVECOT, TLS), ['8BITMIME', 'CHUNKING', 'ENHANCEDSTATUSCODES', 'SIZE', 'PIPELINING', 'AUTH PLAIN LOGIN']);
    assert.deepEqual(clientExtensions(POSTFIX, TLS), ['PIPELINING', 'SIZE 10240000', 'ENHANCEDSTATUSCODES', '8BITMIME', 'DSN', 'SMTPUTF8', 'CHUNKING', 'AUTH PLAIN LOGIN']);
  });

  it('offers STARTTLS and no AUTH in clear on a STARTTLS port, AUTH and no STARTTLS after TLS', () => {
    const before = clientExtensions(POSTFIX, { mode: 'starttls', secure: false });
    assert.ok(before.includes('STARTTLS'));
    assert.ok(!before.some((l) => l.startsWith('AUTH')));
    const after = clientExtensions(POSTFIX, { mode: 'starttls', secure: true });
    assert.ok(!after.includes('STARTTLS'));
    assert.equal(after.at(-1), 'AUTH PLAIN LOGIN');
    assert.equal(clientExtensions([], { mode: 'none', secure: false }).at(-1), 'AUTH PLAIN LOGIN');
  });

  it('never passes on XCLIENT, XFORWARD, BURL, VRFY, ETRN or unknown extensions', () => {
    const out = clientExtensions(['XCLIENT ADDR', 'xclient', 'XFORWARD NAME', 'BURL imap', 'VRFY', 'ETRN', 'X-EXPS GSSAPI', 'AUTH=LOGIN', 'DELIVERBY 60', 'REQUIRETLS'], TLS);
    assert.deepEqual(out, ['AUTH PLAIN LOGIN']);
  });

  it('survives hostile upstream lines: no injection, no parameters but a sane SIZE', () => {
    const out = clientExtensions(
      ['8BITMIME\r\n250 AUTH PLAIN', 'SIZE 12abc', 'SIZE 99999999999999999999', 'PIPELINING extra junk', 'CHUNKING\0', '', '   ', 'dsn', 'DSN', 'SMTPUTF8 \x1b[2J', 'ÜTF8'],
      TLS,
    );
    assert.deepEqual(out, ['8BITMIME', 'SIZE', 'PIPELINING', 'DSN', 'SMTPUTF8', 'AUTH PLAIN LOGIN']);
    for (const l of out) assert.match(l, /^[A-Z0-9 -]+$/);
    assert.deepEqual(clientExtensions(['SIZE 0'], TLS), ['SIZE', 'AUTH PLAIN LOGIN']);
    assert.deepEqual(clientExtensions(['size 35882577'], TLS), ['SIZE 35882577', 'AUTH PLAIN LOGIN']);
  });

  it('drops BINARYMIME without CHUNKING (RFC 3030)', () => {
    assert.deepEqual(clientExtensions(['BINARYMIME'], TLS), ['AUTH PLAIN LOGIN']);
    assert.deepEqual(clientExtensions(['BINARYMIME', 'CHUNKING'], TLS), ['BINARYMIME', 'CHUNKING', 'AUTH PLAIN LOGIN']);
  });

  it('formats the EHLO reply with continuation lines', () => {
    assert.deepEqual(ehloReply('mx.example', ['8BITMIME', 'AUTH PLAIN LOGIN']), ['250-mx.example', '250-8BITMIME', '250 AUTH PLAIN LOGIN']);
    assert.deepEqual(ehloReply('mx.example', []), ['250 mx.example']);
  });
});
