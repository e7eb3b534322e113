/**
 * The capability list a client sees before login. mailotp answers every pre-login command
 * itself, so the upstream's pre-login extensions are replaced by mailotp's own; what describes
 * the logged-in session (IDLE, ENABLE, CONDSTORE, ...) is kept for clients that never ask again.
 */

/** Dropped whatever the upstream says: only the proxy decides these. */
const PROXY_ONLY = new Set([
  'IMAP4REV1',
  'STARTTLS',
  'LOGINDISABLED',
  'SASL-IR',
  'LOGIN-REFERRALS',
  'ID',
  'LITERAL+',
  'LITERAL-',
  // Would let a logged-in client drop back to not-authenticated and log in again past the approval.
  'UNAUTHENTICATE',
]);

/** Authentication mechanisms and the proxy hooks that let a client claim another IP or user. */
const PROXY_ONLY_PREFIX = /^(AUTH=|XCLIENT|XFORWARD|XPROXY|XAUTH|XOAUTH|XUSER)/i;

/** A capability is an atom; anything else from the upstream would break (or inject into) our line. */
const ATOM = /^[^\x00-\x20\x7f-\uffff(){%*"\\\]]+$/;

export interface CapabilityState {
  /** A STARTTLS port before TLS is up: logins are refused until it is. */
  beforeStartTls: boolean;
}

export function clientCapabilities(upstream: readonly string[], state: CapabilityState): string[] {
  const out: string[] = ['IMAP4rev1'];
  const seen = new Set(['IMAP4REV1']);
  const add = (cap: string) => {
    const key = cap.toUpperCase();
    if (seen.has(key)) return;
    seen.add(key);
    out.push(cap);
  };
  for (const cap of upstream) {
    if (cap.toUpperCase() === 'IMAP4REV2') add(cap);
  }
  for (const cap of upstream) {
    if (!ATOM.test(cap) || PROXY_ONLY.has(cap.toUpperCase()) || PROXY_ONLY_PREFIX.test(cap)) continue;
    add(cap);
  }
  for (const cap of ['ID', 'LITERAL+', 'SASL-IR']) add(cap);
  for (const cap of state.beforeStartTls ? ['STARTTLS', 'LOGINDISABLED'] : ['AUTH=PLAIN', 'AUTH=LOGIN']) add(cap);
  return out;
}
