import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { clientCapabilities } from '../../../src/protocols/imap/imap-capabilities.js';

const DOVECOT = ['IMAP4rev1', 'SASL-IR', 'LOGIN-REFERRALS', 'ID', 'ENABLE', 'IDLE', 'LITERAL+', 'STARTTLS', 'AUTH=PLAIN', 'AUTH=LOGIN'];

describe('imap capabilities', () => {
  it('replaces what only the proxy controls, keeps the rest (implicit TLS / after STARTTLS)', () => {
    assert.deepEqual(clientCapabilities(DOVECOT, { beforeStartTls: false }), [
      'IMAP4rev1',
      'ENABLE',
      'IDLE',
      'ID',
      'LITERAL+',
      'SASL-IR',
      'AUTH=PLAIN',
      'AUTH=LOGIN',
    ]);
  });

  it('before STARTTLS: STARTTLS LOGINDISABLED and no AUTH=', () => {
    const caps = clientCapabilities([...DOVECOT, 'AUTH=XOAUTH2', 'AUTH=GSSAPI'], { beforeStartTls: true });
    assert.deepEqual(caps, ['IMAP4rev1', 'ENABLE', 'IDLE', 'ID', 'LITERAL+', 'SASL-IR', 'STARTTLS', 'LOGINDISABLED']);
    assert.ok(!caps.some((c) => c.toUpperCase().startsWith('AUTH=')));
  });

  it('drops an upstream LOGINDISABLED, LITERAL-, proxy hooks and UNAUTHENTICATE', () => {
    const caps = clientCapabilities(
      ['imap4rev1', 'LOGINDISABLED', 'LITERAL-', 'XCLIENT', 'XFORWARD', 'XPROXY-ID', 'UNAUTHENTICATE', 'X-GM-EXT-1', 'QUOTA', 'APPENDLIMIT=35651584'],
      { beforeStartTls: false },
    );
    assert.deepEqual(caps, ['IMAP4rev1', 'X-GM-EXT-1', 'QUOTA', 'APPENDLIMIT=35651584', 'ID', 'LITERAL+', 'SASL-IR', 'AUTH=PLAIN', 'AUTH=LOGIN']);
  });

  it('keeps IMAP4rev2 right after IMAP4rev1 and never duplicates', () => {
    const caps = clientCapabilities(['IDLE', 'IMAP4rev2', 'idle', 'IMAP4REV1'], { beforeStartTls: false });
    assert.deepEqual(caps.slice(0, 3), ['IMAP4rev1', 'IMAP4rev2', 'IDLE']);
    assert.equal(new Set(caps.map((c) => c.toUpperCase())).size, caps.length);
  });

  it('refuses tokens that would break the reply line', () => {
    const caps = clientCapabilities(['IDLE\r\n* BYE', 'A B', 'OK]', '', 'QUOTA', 'FOO(', 'BAR"', 'N\u00e9'], { beforeStartTls: false });
    assert.deepEqual(caps, ['IMAP4rev1', 'QUOTA', 'ID', 'LITERAL+', 'SASL-IR', 'AUTH=PLAIN', 'AUTH=LOGIN']);
  });

  it('works with no upstream list at all', () => {
    assert.deepEqual(clientCapabilities([], { beforeStartTls: true }), ['IMAP4rev1', 'ID', 'LITERAL+', 'SASL-IR', 'STARTTLS', 'LOGINDISABLED']);
  });
});
