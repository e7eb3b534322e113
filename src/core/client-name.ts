/** Longest client name shown to the phone, in code points. */
export const MAX_CLIENT_NAME = 64;

/**
 * Control (Cc), format (Cf: bidi overrides U+202A-202E and isolates U+2066-2069, zero-width
 * characters, soft hyphen), line and paragraph separators, private-use and lone surrogates: any of
 * them could make the question on the phone read as something else ("Thunderbird" followed by a
 * right-to-left override and a fake address).
 */
const HIDDEN = /[\p{Cc}\p{Cf}\p{Zl}\p{Zp}\p{Co}\p{Cs}]/gu;

/**
 * The client's own name (IMAP ID "name", SMTP EHLO) as every channel shows it: hidden characters
 * removed, white space collapsed, capped. undefined when nothing is left.
 */
export function cleanClientName(name: string | undefined): string | undefined {
  if (name === undefined) return undefined;
  const clean = name.normalize('NFC').replace(HIDDEN, '').replace(/\s+/gu, ' ').trim();
  const capped = Array.from(clean).slice(0, MAX_CLIENT_NAME).join('').trim();
  return capped || undefined;
}
