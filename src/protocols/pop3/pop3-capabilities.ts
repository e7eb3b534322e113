/**
 * The CAPA list a client sees before login (RFC 2449). mailotp answers every pre-login command
 * itself, so what describes authentication is mailotp's own; what describes the logged-in session
 * (TOP, UIDL, PIPELINING, EXPIRE, LOGIN-DELAY, ...) is the upstream's, since after the splice the
 * client talks to the upstream.
 */

/** Dropped whatever the upstream says: only the proxy decides these. */
const PROXY_ONLY = new Set([
  'STLS',
  'SASL',
  'USER',
  'APOP',
  // Names the upstream's software to a client that has not logged in; mailotp answers for itself.
  'IMPLEMENTATION',
  // mailotp adds these itself: its own replies carry the codes.
  'RESP-CODES',
  'AUTH-RESP-CODE',
]);

/** Proxy hooks that would let a client claim another IP or user. */
const PROXY_ONLY_PREFIX = /^(XCLIENT|XFORWARD|XPROXY|XAUTH|XOAUTH|XUSER)/i;

/**
 * RFC 2449 capa-tag and parameters: printable ASCII words separated by single spaces. Anything
 * else (a control character, a line of its own starting with ".") would break or end our list.
 */
const CAPA_LINE = /^[\x21-\x2d\x2f-\x7e][\x21-\x7e]*(?: [\x21-\x7e]+)*$/;

export const POP3_SASL_MECHANISMS = ['PLAIN', 'LOGIN'] as const;

export interface CapabilityState {
  /** A STARTTLS port before TLS is up: logins are refused until it is. */
  beforeStartTls: boolean;
  /** STLS may be offered (a STARTTLS port, TLS not yet up). */
  stlsAvailable: boolean;
}

/** The tag of a CAPA line, upper-cased ("SASL PLAIN LOGIN" -> "SASL"). */
export function capaTag(line: string): string {
  return (line.split(' ', 1)[0] ?? '').toUpperCase();
}

/** The CAPA lines for the client, without the "+OK" line and the "." terminator. */
export function clientCapabilities(upstream: readonly string[], state: CapabilityState): string[] {
  const out: string[] = [];
  const seen = new Set<string>();
  const add = (line: string) => {
    const tag = capaTag(line);
    if (seen.has(tag)) return;
    seen.add(tag);
    out.push(line);
  };
  for (const line of upstream) {
    const tag = capaTag(line);
    if (!CAPA_LINE.test(line) || PROXY_ONLY.has(tag) || PROXY_ONLY_PREFIX.test(tag)) continue;
    add(line);
  }
  add('RESP-CODES');
  add('AUTH-RESP-CODE');
  if (!state.beforeStartTls) {
    add('USER');
    add(`SASL ${POP3_SASL_MECHANISMS.join(' ')}`);
  }
  if (state.stlsAvailable) add('STLS');
  return out;
}
