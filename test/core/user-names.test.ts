import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { UserNames, type UserNameRules } from '../../src/core/user-names.js';

function canon(typed: string, rules: Partial<UserNameRules> = {}): string | null {
  const c = new UserNames({ caseSensitive: false, stripDomain: false, ...rules }).canonical(typed);
  return c.ok ? c.name : null;
}

/** What Dovecot's %Lu does: ASCII letters lowered, everything else left alone. */
function dovecotLower(s: string): string {
  return s.replace(/[A-Z]/g, (ch) => ch.toLowerCase());
}

describe('UserNames (defaults: case-insensitive, domain kept)', () => {
  it('folds every spelling the upstream treats as one account into one name', () => {
    for (const typed of ['alice', 'ALICE', 'Alice', ' alice ', '\talIce', 'ＡＬＩＣＥ', 'ａｌｉｃｅ', 'alıce', 'ALİCE']) {
      assert.equal(canon(typed), 'alice', JSON.stringify(typed));
    }
    assert.equal(canon('Alice@Example.COM'), 'alice@example.com');
    assert.equal(canon('STRAßE'), canon('strasse'));
    assert.equal(canon('\u212Aate'), 'kate', 'KELVIN SIGN');
    assert.equal(canon('e\u0301mile'), canon('\u00e9mile'), 'NFC');
    assert.equal(canon('ΟΔΥΣΣΕΥΣ'), canon('οδυσσευς'), 'final sigma');
  });

  it('folds at least as much as Dovecot %Lu, for any mix of cases (never less)', () => {
    const samples = ['Alice', 'BOB@Example.org', 'ÄLICE', 'Straße', 'ΑΣ', 'ΑΣα', 'mIxEd.Case-Name_1', 'İstanbul', 'ǅemal', 'ﬁnn'];
    for (const s of samples) {
      // Dovecot merges X and Y exactly when dovecotLower(X) === dovecotLower(Y); so it is enough that
      // every ASCII-case variant X of the sample canonicalises like dovecotLower(X).
      const chars = [...s];
      const letters = chars.flatMap((ch, i) => (/[A-Za-z]/.test(ch) ? [i] : [])).slice(0, 8);
      for (let mask = 0; mask < 1 << letters.length; mask++) {
        const v = [...chars];
        letters.forEach((at, bit) => {
          const ch = v[at] ?? '';
          if (mask & (1 << bit)) v[at] = ch === ch.toUpperCase() ? ch.toLowerCase() : ch.toUpperCase();
        });
        const variant = v.join('');
        assert.equal(canon(variant), canon(dovecotLower(variant)), variant);
      }
    }
  });

  it('refuses names no account can have: empty, control or format characters, over 255 bytes', () => {
    for (const typed of ['', '   ', '\u3000', 'al\u0000ice', 'al\u0085ice', 'ali\u200bce', 'al\u202eice', 'alice\u2066', 'al\u2028ice', 'a'.repeat(256), 'é'.repeat(128)]) {
      assert.equal(canon(typed), null, JSON.stringify(typed));
    }
    assert.equal(canon('a'.repeat(255)), 'a'.repeat(255));
  });
});

describe('UserNames with stripDomain (Dovecot %Ln)', () => {
  it('drops the domain at the first @, as %n does', () => {
    assert.equal(canon('alice@anything', { stripDomain: true }), 'alice');
    assert.equal(canon('ALICE@Example.com', { stripDomain: true }), 'alice');
    assert.equal(canon('alice@evil@example.com', { stripDomain: true }), 'alice');
    assert.equal(canon('alice', { stripDomain: true }), 'alice');
    assert.equal(canon('@example.com', { stripDomain: true }), null);
  });
});

describe('UserNames with defaultDomain (auth_default_realm)', () => {
  it('adds the domain to a bare name and folds its case', () => {
    const r = { defaultDomain: 'Example.com' };
    assert.equal(canon('alice', r), 'alice@example.com');
    assert.equal(canon('ALICE@EXAMPLE.COM', r), 'alice@example.com');
    assert.equal(canon('alice@other.org', r), 'alice@other.org');
  });
});

describe('UserNames with caseSensitive', () => {
  it('keeps the case but still trims and normalises to NFC', () => {
    assert.equal(canon(' Alice ', { caseSensitive: true }), 'Alice');
    assert.equal(canon('E\u0301mile', { caseSensitive: true }), '\u00c9mile');
    assert.notEqual(canon('Alice', { caseSensitive: true }), canon('alice', { caseSensitive: true }));
  });

  it('says which rule it assumes', () => {
    assert.match(new UserNames({ caseSensitive: false, stripDomain: false }).describe(), /case-insensitive.*%Lu/);
    assert.match(new UserNames({ caseSensitive: false, stripDomain: true }).describe(), /%Ln/);
    assert.match(new UserNames({ caseSensitive: true, stripDomain: false, defaultDomain: 'example.com' }).describe(), /case-sensitive.*@example\.com/);
  });
});
