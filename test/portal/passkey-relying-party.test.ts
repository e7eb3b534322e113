import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { FastifyRequest } from 'fastify';
import { relyingPartyOf } from '../../src/portal/pages/passkey-routes.js';

const request = (host?: string) => ({ headers: host === undefined ? {} : { host } }) as FastifyRequest;

describe('relyingPartyOf (the passkeys RP ID and origin)', () => {
  it('takes portal.publicUrl when set, whatever Host the request names', () => {
    assert.deepEqual(relyingPartyOf({ publicUrl: 'https://Mail.Example.com:8443/portal/', tls: true }, request('evil.example')), { id: 'mail.example.com', origin: 'https://mail.example.com:8443' });
    assert.deepEqual(relyingPartyOf({ publicUrl: 'https://mail.example.com', tls: false }, request('localhost:1')), { id: 'mail.example.com', origin: 'https://mail.example.com' });
  });

  it("else the request's Host, with the portal's own scheme", () => {
    assert.deepEqual(relyingPartyOf({ tls: true }, request('localhost:8443')), { id: 'localhost', origin: 'https://localhost:8443' });
    assert.deepEqual(relyingPartyOf({ tls: false }, request('localhost:8080')), { id: 'localhost', origin: 'http://localhost:8080' });
  });

  it('refuses IP addresses (WebAuthn does) and a Host that is no host name', () => {
    for (const host of ['127.0.0.1:8443', '[::1]:8443', '192.0.2.7', undefined, '', 'a b', 'x@y/z'])
      assert.equal(relyingPartyOf({ tls: true }, request(host)), null, String(host));
    assert.equal(relyingPartyOf({ publicUrl: 'https://203.0.113.5:8443', tls: true }, request('localhost')), null);
  });
});
