/**
 * The EHLO list a client sees. mailotp answers everything before AUTH itself and then splices
 * the client to the upstream, so it offers what it does itself (STARTTLS, AUTH) plus those upstream
 * extensions that only describe the mail transaction and therefore work unchanged through a splice.
 * Clients rarely ask again after AUTH, so this list is what they rely on for the whole session.
 */

/** Transaction extensions that pass through a splice; everything else from the upstream is dropped. */
const PASSED_ON = new Set(['SIZE', '8BITMIME', 'SMTPUTF8', 'PIPELINING', 'CHUNKING', 'ENHANCEDSTATUSCODES', 'DSN', 'BINARYMIME']);

/** RFC 5321 4.1.1.1 ehlo-keyword; anything else would break (or inject into) our reply. */
const KEYWORD = /^[A-Za-z0-9][A-Za-z0-9-]{0,63}$/;
/** RFC 1870: the SIZE parameter is a number of octets; 0 or none means "no fixed limit". */
const SIZE_VALUE = /^\d{1,15}$/;

export interface ExtensionState {
  mode: 'implicit' | 'starttls' | 'none';
  /** TLS is up on the client connection. */
  secure: boolean;
}

/**
 * `upstream`: the upstream's EHLO lines after the greeting line ("SIZE 35882577", "8BITMIME", ...).
 * Returns the lines mailotp puts after its own "250-<hostname>" line.
 */
export function clientExtensions(upstream: readonly string[], state: ExtensionState): string[] {
  const out: string[] = [];
  const seen = new Set<string>();
  for (const line of upstream) {
    const [word = '', ...params] = line.trim().split(/\s+/);
    const keyword = word.toUpperCase();
    if (!KEYWORD.test(word) || !PASSED_ON.has(keyword) || seen.has(keyword)) continue;
    seen.add(keyword);
    if (keyword === 'SIZE') {
      const value = params[0];
      out.push(value !== undefined && SIZE_VALUE.test(value) && Number(value) > 0 ? `SIZE ${Number(value)}` : 'SIZE');
    } else {
      out.push(keyword);
    }
  }
  // RFC 3030: BINARYMIME is only usable with BDAT.
  if (seen.has('BINARYMIME') && !seen.has('CHUNKING')) out.splice(out.indexOf('BINARYMIME'), 1);
  if (state.mode === 'starttls' && !state.secure) out.push('STARTTLS');
  else out.push('AUTH PLAIN LOGIN');
  return out;
}

/** The EHLO reply: "250-<hostname>" then one line per extension, the last with "250 ". */
export function ehloReply(hostname: string, extensions: readonly string[]): string[] {
  const lines = [hostname, ...extensions];
  return lines.map((l, i) => `250${i === lines.length - 1 ? ' ' : '-'}${l}`);
}
