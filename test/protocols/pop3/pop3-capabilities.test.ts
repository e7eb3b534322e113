import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { clientCapabilities } from '../../../src/protocols/pop3/pop3-capabilities.js';

/** Dovecot 2.3's pre-login CAPA over TLS, plus what other servers add. */
const UPSTREAM = ['CAPA', 'TOP', 'UIDL', 'RESP-CODES', 'PIPELINING', 'AUTH-RESP-CODE', 'USER', 'SASL PLAIN LOGIN CRAM-MD5', 'EXPIRE 30', 'IMPLEMENTATION Dovecot'];

describe('pop3 capabilities', () => {
  it('mirrors the session capabilities and replaces the authentication ones, after TLS', () => {
    assert.deepEqual(clientCapabilities(UPSTREAM, { beforeStartTls: false, stlsAvailable: false }), [
      'CAPA',
      'TOP',
      'UIDL',
      'PIPELINING',
      'EXPIRE 30',
      'RESP-CODES',
      'AUTH-RESP-CODE',
      'USER',
      'SASL PLAIN LOGIN',
    ]);
  });

  it('offers STLS and no way to log in on a STARTTLS port before TLS', () => {
    const caps = clientCapabilities(UPSTREAM, { beforeStartTls: true, stlsAvailable: true });
    assert.ok(caps.includes('STLS'));
    assert.ok(!caps.some((c) => /^(USER|SASL)/.test(c)));
    assert.ok(caps.includes('TOP'));
  });

  it('never passes on STLS, XCLIENT and friends, or the upstream SASL list', () => {
    const caps = clientCapabilities(['STLS', 'XCLIENT', 'xforward', 'XOAUTH2', 'SASL GSSAPI', 'APOP', 'TOP'], { beforeStartTls: false, stlsAvailable: false });
    assert.deepEqual(caps, ['TOP', 'RESP-CODES', 'AUTH-RESP-CODE', 'USER', 'SASL PLAIN LOGIN']);
  });

  it('drops upstream lines that would break or end the list', () => {
    const hostile = ['.', '.HIDDEN', 'TOP\r\n+OK injected', 'UIDL\x00', 'LOGIN-DELAY  900', 'EXPIRE\t1', '', ' TOP', 'ÜBER', 'LOGIN-DELAY 900'];
    assert.deepEqual(clientCapabilities(hostile, { beforeStartTls: false, stlsAvailable: false }), [
      'LOGIN-DELAY 900',
      'RESP-CODES',
      'AUTH-RESP-CODE',
      'USER',
      'SASL PLAIN LOGIN',
    ]);
  });

  it('lists each tag once, whatever its case', () => {
    const caps = clientCapabilities(['top', 'TOP', 'uidl', 'resp-codes'], { beforeStartTls: false, stlsAvailable: false });
    assert.deepEqual(caps, ['top', 'uidl', 'RESP-CODES', 'AUTH-RESP-CODE', 'USER', 'SASL PLAIN LOGIN']);
  });

  it('still lets a client in when the upstream never answered (empty list)', () => {
    assert.deepEqual(clientCapabilities([], { beforeStartTls: false, stlsAvailable: false }), ['RESP-CODES', 'AUTH-RESP-CODE', 'USER', 'SASL PLAIN LOGIN']);
  });
});
