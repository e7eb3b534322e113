/** How the upstream folds the names clients type into one account (config `users`). */
export interface UserNameRules {
  caseSensitive: boolean;
  /** `alice@example.com` → `alice` (Dovecot %n, %Ln). */
  stripDomain: boolean;
  /** Bare `alice` → `alice@<defaultDomain>` (Dovecot auth_default_realm). */
  defaultDomain?: string;
}

export type CanonicalName = { ok: true; name: string } | { ok: false; why: string };

/** Longest name accepted, in UTF-8 bytes, as typed and as canonicalised. */
export const MAX_USER_NAME_BYTES = 255;

/**
 * Control (Cc), format (Cf: zero-width, bidi), line/paragraph separators and lone surrogates: no
 * real login name holds them, and some backends drop them silently, which would make two spellings
 * one account upstream and two names here.
 */
const FORBIDDEN = /[\p{Cc}\p{Cf}\p{Zl}\p{Zp}\p{Cs}]/u;

/**
 * Case folding that is a superset of every upstream rule we know: Dovecot's %L lowercases ASCII
 * only, directories fold Unicode case and sometimes width. Folding more than the upstream only
 * ever merges two upstream accounts into one mailotp name (both then answer to the same phone);
 * folding less would let one account hide behind a second name with no two-factor at all.
 * NFKC maps full-width and compatibility letters (Ａ, ﬁ, ℌ) to plain ones; upper-then-lower
 * gives full case folding (ß → ss, ſ → s, K (Kelvin) → k, ı → i); İ is folded as Turkish does.
 * Repeated until stable, because each step can expose work for the other.
 */
function foldCase(s: string): string {
  let cur = s;
  for (let i = 0; i < 4; i++) {
    const next = cur.normalize('NFKC').replace(/\u0130/g, 'I').toUpperCase().toLowerCase().normalize('NFKC');
    if (next === cur) break;
    cur = next;
  }
  return cur;
}

/** The one canonicaliser: every record and every lookup uses the name it returns. */
export class UserNames {
  private readonly domain: string | undefined;

  constructor(readonly rules: UserNameRules) {
    this.domain = rules.defaultDomain === undefined ? undefined : this.fold(rules.defaultDomain.trim().replace(/^@/, ''));
  }

  private fold(s: string): string {
    return this.rules.caseSensitive ? s.normalize('NFC') : foldCase(s);
  }

  /** Trimmed, NFC, case-folded (unless caseSensitive), then stripDomain or defaultDomain. */
  canonical(typed: string): CanonicalName {
    if (Buffer.byteLength(typed, 'utf8') > MAX_USER_NAME_BYTES * 4) return { ok: false, why: 'user name too long' };
    const trimmed = typed.trim();
    if (trimmed.length === 0) return { ok: false, why: 'empty user name' };
    if (FORBIDDEN.test(trimmed)) return { ok: false, why: 'control or format character in user name' };
    let name = this.fold(trimmed);
    if (this.rules.stripDomain) {
      // Dovecot's %n ends at the first '@' ("a@b@c" is user "a"); so does this.
      const at = name.indexOf('@');
      if (at >= 0) name = name.slice(0, at).trim();
    } else if (this.domain !== undefined && !name.includes('@')) {
      name = `${name}@${this.domain}`;
    }
    if (name.length === 0) return { ok: false, why: 'empty user name' };
    if (Buffer.byteLength(name, 'utf8') > MAX_USER_NAME_BYTES || Buffer.byteLength(trimmed, 'utf8') > MAX_USER_NAME_BYTES) {
      return { ok: false, why: 'user name too long' };
    }
    return { ok: true, name };
  }

  /** One sentence for check-config: the upstream rule these settings assume. */
  describe(): string {
    const r = this.rules;
    const fold = r.caseSensitive ? 'names are case-sensitive (only Unicode NFC and trimming)' : 'names are case-insensitive (Unicode case folding, NFKC)';
    const domain = r.stripDomain
      ? 'the domain is dropped (alice@example.com is alice, like Dovecot %Ln)'
      : this.domain !== undefined
        ? `a bare name gets @${this.domain} (like Dovecot auth_default_realm)`
        : 'the domain is kept (alice and alice@example.com are two accounts, like Dovecot %Lu)';
    return `${fold}; ${domain}`;
  }
}
