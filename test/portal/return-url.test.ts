import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { rdOfQuery, safeReturnUrl } from '../../src/portal/pages/return-url.js';

const allowed = ['webmail.example.com', 'mail.example.com:8443'];
const ok = (rd: string, http = false) => safeReturnUrl(rd, allowed, http);

describe('safeReturnUrl: back only to an allowed host, never an open redirect', () => {
  it('accepts an https URL on an allowed host, with its path and query', () => {
    assert.equal(ok('https://webmail.example.com/?_task=mail&_mbox=INBOX'), 'https://webmail.example.com/?_task=mail&_mbox=INBOX');
    assert.equal(ok('https://WEBMAIL.example.com'), 'https://webmail.example.com/');
    assert.equal(ok('https://webmail.example.com:443/x'), 'https://webmail.example.com/x');
    assert.equal(ok('https://mail.example.com:8443/roundcube/'), 'https://mail.example.com:8443/roundcube/');
  });

  it('refuses other hosts, other ports and look-alikes', () => {
    for (const rd of [
      'https://evil.example/',
      'https://webmail.example.com.evil.example/',
      'https://evilwebmail.example.com/',
      'https://webmail.example.com:8443/',
      'https://mail.example.com/',
      'https://mail.example.com:9443/',
    ]) assert.equal(ok(rd), null, rd);
  });

  it('refuses scheme-relative, relative, user info, backslashes, encoded and control-character tricks', () => {
    for (const rd of [
      '//evil.example/',
      '/\\evil.example/',
      '\\\\evil.example',
      '/settings',
      'https://evil@webmail.example.com/',
      'https://webmail.example.com@evil.example/',
      'https://webmail.example.com:x@evil.example/',
      'https://webmail.example.com\\@evil.example/',
      'https:\\\\webmail.example.com/',
      'https:/webmail.example.com/',
      'https:webmail.example.com/',
      'https://webmail.example.com%2F@evil.example/',
      'https://webmail.example.com%40evil.example/',
      'https://webmail%2eexample%2ecom/',
      'https://evil.example%23@webmail.example.com/',
      'https://webmail.example.com\t/',
      'https://webmail.example.com\n.evil.example/',
      ' https://webmail.example.com/',
      'javascript:alert(1)//https://webmail.example.com/',
      'data:text/html,https://webmail.example.com/',
      'ftp://webmail.example.com/',
      `https://webmail.example.com/${'a'.repeat(2100)}`,
      '',
    ]) assert.equal(ok(rd), null, JSON.stringify(rd));
    assert.equal(safeReturnUrl(undefined, allowed, false), null);
  });

  it('allows plain http only when the portal itself is plain http', () => {
    assert.equal(ok('http://webmail.example.com/'), null);
    assert.equal(ok('http://webmail.example.com/', true), 'http://webmail.example.com/');
  });

  it('allows nothing when no host is listed', () => {
    assert.equal(safeReturnUrl('https://webmail.example.com/', [], false), null);
  });
});

describe('rdOfQuery', () => {
  it('reads an encoded rd like any query parameter', () => {
    assert.equal(rdOfQuery(`rd=${encodeURIComponent('https://w.example/?a=1&b=2')}`), 'https://w.example/?a=1&b=2');
    assert.equal(rdOfQuery(`lang=en&rd=${encodeURIComponent('https://w.example/')}`), 'https://w.example/');
  });

  it("takes nginx's unencoded rd with the rest of the query, its own & included", () => {
    assert.equal(rdOfQuery('rd=https://w.example/?_task=mail&_mbox=INBOX'), 'https://w.example/?_task=mail&_mbox=INBOX');
  });

  it('refuses a repeated or missing rd', () => {
    assert.equal(rdOfQuery('rd=a&rd=b'), undefined);
    assert.equal(rdOfQuery('x=1'), undefined);
    assert.equal(rdOfQuery(''), undefined);
  });
});
