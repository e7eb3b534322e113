import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { html } from '../../src/portal/pages/html.js';
import { pageContext } from '../../src/portal/pages/layout.js';
import { signInPage } from '../../src/portal/pages/sign-in-views.js';
import { pickLang, translator } from '../../src/portal/pages/texts.js';

describe('page templates', () => {
  it('escape every value, nested ones too, unless it is markup made by html``', () => {
    const evil = `<script>alert("x")</script>' onmouseover='x' \``;
    const out = html`<p title="${evil}">${evil}${[evil, html`<b>${evil}</b>`]}</p>`.text;
    assert.ok(!out.includes('<script>'));
    assert.ok(!out.includes("' onmouseover") && !out.includes('"x"') && !out.includes('`'), out);
    assert.ok(out.includes('&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;&#39; onmouseover=&#39;x&#39; &#96;'));
    assert.equal((out.match(/<b>/g) ?? []).length, 1);
    assert.equal(html`${0}${null}${undefined}${false}`.text, '0');
  });

  it('put a user name typed into the sign-in form back only as text', () => {
    const page = signInPage(pageContext('en', 'tok"en', '/'), { error: 'badPassword', user: '"><img src=x onerror=alert(1)>' }).text;
    assert.ok(!page.includes('<img src=x'));
    assert.ok(page.includes('value="&quot;&gt;&lt;img src=x onerror=alert(1)&gt;"'));
    assert.ok(page.includes('name="_csrf" value="tok&quot;en"'));
    assert.ok(!/<script>|<style|style="/.test(page), 'nothing inline for the CSP to refuse');
  });
});

describe('languages', () => {
  it('take ?lang= first, then the remembered choice, then Accept-Language by weight; any Chinese is zh-TW', () => {
    assert.equal(pickLang('zh-TW', 'en', 'en'), 'zh-TW');
    assert.equal(pickLang('fr', 'zh-TW', 'en'), 'zh-TW');
    assert.equal(pickLang(undefined, undefined, 'zh-TW,zh;q=0.9,en;q=0.8'), 'zh-TW');
    assert.equal(pickLang(undefined, undefined, 'zh-HK'), 'zh-TW');
    assert.equal(pickLang(undefined, undefined, 'fr-FR, en;q=0.5, zh;q=0.4'), 'en');
    assert.equal(pickLang(undefined, undefined, 'en;q=0.3, zh-Hant;q=0.9'), 'zh-TW');
    assert.equal(pickLang(['zh-TW'], undefined, 'de'), 'en', 'a repeated ?lang= is ignored');
    assert.equal(pickLang(undefined, undefined, undefined), 'en');
  });

  it('fill in values and keep the fixed control names', () => {
    assert.equal(translator('en')('signedInAs', { user: 'alice' }), 'Signed in as alice');
    assert.equal(translator('zh-TW')('signedInAs', { user: 'alice' }), '已登入為 alice');
    const en = translator('en');
    assert.deepEqual(
      ['userName', 'password', 'signIn', 'bindPhone', 'qrAlt', 'deviceCode', 'bind', 'clearDevice', 'daemonSwitch', 'revoke', 'signOut'].map((k) => en(k as Parameters<typeof en>[0])),
      ['User name', 'Password', 'Sign in', 'Bind a phone', 'Pairing QR code', 'Device verification code', 'Bind', 'Clear bound device', 'Two-factor required for send/receive', 'Revoke', 'Sign out'],
    );
  });
});
