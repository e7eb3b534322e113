/**
 * Where `/auth/login?rd=` may send the browser back to: only an absolute URL on a host listed in
 * portal.allowedRedirects. Everything that browsers and URL parsers read differently (backslashes,
 * user info, control characters, scheme-relative `//host`, encoded separators in the authority) is
 * refused before the URL is parsed, so that what is checked is what the browser will open.
 */
const MAX_LENGTH = 2048;
/** Scheme, `//`, an authority with no user info, slash or backslash, then a path/query/fragment or nothing. */
const SHAPE = /^(https?):\/\/([A-Za-z0-9.-]+(?::[0-9]{1,5})?)(?:[/?#]|$)/;

export function safeReturnUrl(rd: string | undefined, allowedHosts: readonly string[], portalIsHttp: boolean): string | null {
  if (!rd || rd.length > MAX_LENGTH) return null;
  // Control characters, spaces and backslashes have no business in a URL we hand back to a browser.
  if (/[\x00-\x20\x7f\\]/.test(rd)) return null;
  const shape = SHAPE.exec(rd);
  if (!shape) return null;
  if (shape[1] === 'http' && !portalIsHttp) return null;
  let url: URL;
  try {
    url = new URL(rd);
  } catch {
    return null;
  }
  if (url.username !== '' || url.password !== '') return null;
  // The parser must agree with the shape check on the host (it lowercases and drops a default port).
  const host = url.host.toLowerCase();
  if (host !== (shape[2] ?? '').toLowerCase().replace(url.protocol === 'https:' ? /:443$/ : /:80$/, '')) return null;
  return allowedHosts.some((h) => h.toLowerCase() === host) ? url.href : null;
}

/**
 * The `rd` of a raw query string. nginx cannot percent-encode `$request_uri`, so a redirect it builds
 * (`?rd=$scheme://$http_host$request_uri`) carries the original URL verbatim: when `rd` comes first and
 * is not itself encoded, the whole rest of the query is the URL (its own `&` included).
 */
export function rdOfQuery(rawQuery: string): string | undefined {
  if (rawQuery.startsWith('rd=')) {
    const rest = rawQuery.slice(3);
    if (/^https?:\/\//i.test(rest)) return rest;
  }
  const rd = new URLSearchParams(rawQuery).getAll('rd');
  return rd.length === 1 ? rd[0] : undefined;
}
