import type { FastifyReply, FastifyRequest } from 'fastify';
import type { PasswordCheckResult } from '../../core/login-types.js';
import type { MethodId } from '../../core/second-factor.js';
import type { CoreApi } from '../../core/services.js';
import type { WebSession } from '../../core/web-session-service.js';
import type { Logger } from '../../log/logger.js';
import type { SafeHtml } from './html.js';
import { pageContext, type PageContext } from './layout.js';
import { pickLang } from './texts.js';

/** What the pages need from the rest of mailotp. */
export interface PagesDeps {
  core: Pick<CoreApi, 'clock' | 'devices' | 'users' | 'requests' | 'approvals' | 'limiter' | 'pairing' | 'webSessions' | 'secondFactors' | 'totp' | 'recoveryCodes' | 'passkeys' | 'rememberedBrowsers'>;
  /** The sign-in's password check: the upstream IMAP login, through the core's limits and counters. */
  checkPassword(user: string, password: string, client: { ip: string; port: number; name?: string }): Promise<PasswordCheckResult>;
  /** Base of the pairing links; the request's own origin when not configured. */
  publicUrl?: string;
  /** Whether the portal itself speaks HTTPS (HSTS, and the origin of links when publicUrl is unset). */
  tls: boolean;
  logger: Logger;
  /** "Remember this browser" (the remembered-browser service, when wired in): called once the second step passed. */
  rememberBrowser?(request: FastifyRequest, reply: FastifyReply, user: string): Promise<void>;
  /** Forward auth for webmail (`/auth/verify`, `/auth/login?rd=`); absent: no return URL is allowed. */
  forwardAuth?: ForwardAuthSettings;
}

export interface ForwardAuthSettings {
  /** Hosts (`host` or `host:port`, exactly) that `/auth/login?rd=` may return to. */
  allowedRedirects: readonly string[];
  /** The session cookie's Domain, so that the webmail host behind the proxy sees it too. */
  cookieDomain?: string;
}

/** `__Host-`: only ever set by this origin over HTTPS, path /, no Domain, so no sibling host can plant it. */
export const SESSION_COOKIE = '__Host-mailotp-session';
/**
 * The session cookie with `portal.cookieDomain`: a Domain attribute rules out `__Host-`; `__Secure-`
 * still keeps plain-HTTP pages from setting it. A sibling host under that domain can read and plant it.
 */
export const SHARED_SESSION_COOKIE = '__Secure-mailotp-session';
export const CSRF_COOKIE = '__Host-mailotp-csrf';
const LANG_COOKIE = 'mailotp-lang';
const YEAR_S = 365 * 24 * 3600;

/**
 * Secure is set even when the portal runs plain HTTP: browsers keep Secure cookies of
 * http://localhost (a secure context), and anywhere else plain HTTP belongs behind a TLS proxy.
 */
export const COOKIE_BASE = { path: '/', httpOnly: true, secure: true, sameSite: 'lax' } as const;

export interface Signed {
  sid: string;
  session: WebSession;
}

/** The page's language (remembering a `?lang=` choice) and a fresh CSRF token for its forms. */
export function contextOf(request: FastifyRequest, reply: FastifyReply): PageContext {
  const query = (request.query ?? {}) as Record<string, unknown>;
  const lang = pickLang(query.lang, request.cookies[LANG_COOKIE], request.headers['accept-language']);
  if (typeof query.lang === 'string' && query.lang === lang) void reply.setCookie(LANG_COOKIE, lang, { ...COOKIE_BASE, maxAge: YEAR_S });
  const path = request.url.split('?')[0] ?? '/';
  return pageContext(lang, reply.generateCsrf(), path);
}

export function sendPage(reply: FastifyReply, page: SafeHtml, status = 200): FastifyReply {
  return reply.code(status).type('text/html; charset=utf-8').send(page.text);
}

export function seeOther(reply: FastifyReply, to: string): FastifyReply {
  return reply.code(303).header('Location', to).send();
}

/** The session cookie's name and Domain, per request: set by registerPages from portal.cookieDomain. */
const sessionCookies = new WeakMap<FastifyRequest, { name: string; domain?: string }>();

export function sessionCookieOf(deps: PagesDeps): { name: string; domain?: string } {
  const domain = deps.forwardAuth?.cookieDomain;
  return domain ? { name: SHARED_SESSION_COOKIE, domain } : { name: SESSION_COOKIE };
}

export function useSessionCookie(request: FastifyRequest, deps: PagesDeps): void {
  sessionCookies.set(request, sessionCookieOf(deps));
}

function sessionCookie(request: FastifyRequest): { name: string; opts: typeof COOKIE_BASE & { domain?: string } } {
  const c = sessionCookies.get(request) ?? { name: SESSION_COOKIE };
  return { name: c.name, opts: c.domain ? { ...COOKIE_BASE, domain: c.domain } : COOKIE_BASE };
}

export async function sessionOf(deps: PagesDeps, request: FastifyRequest): Promise<Signed | null> {
  const sid = request.cookies[sessionCookieOf(deps).name];
  const session = await deps.core.webSessions.get(sid);
  return sid && session ? { sid, session } : null;
}

/** The session when it is at `stage`; else null, after sending the browser back to the start. */
export async function sessionAt(deps: PagesDeps, request: FastifyRequest, reply: FastifyReply, stage: WebSession['stage']): Promise<Signed | null> {
  const s = await sessionOf(deps, request);
  if (s?.session.stage === stage) return s;
  void seeOther(reply, '/');
  return null;
}

export function setSessionCookie(reply: FastifyReply, s: Signed, now: number): void {
  const { name, opts } = sessionCookie(reply.request);
  void reply.setCookie(name, s.sid, { ...opts, maxAge: Math.max(1, Math.floor((s.session.expiresAt - now) / 1000)) });
}

export function clearSessionCookie(reply: FastifyReply): void {
  const { name, opts } = sessionCookie(reply.request);
  void reply.clearCookie(name, opts);
}

/** The browser and OS a User-Agent names ('' for an OS it does not name). */
export function userAgentParts(ua: string | undefined): { browser: string; os: string } {
  const s = ua ?? '';
  const browser = /Edg\//.test(s) ? 'Edge' : /Firefox\//.test(s) ? 'Firefox' : /Chrom(e|ium)\//.test(s) ? 'Chrome' : /Safari\//.test(s) ? 'Safari' : 'Browser';
  const os = /Android/.test(s) ? 'Android' : /iPhone|iPad/.test(s) ? 'iOS' : /Windows/.test(s) ? 'Windows' : /Mac OS X/.test(s) ? 'macOS' : /Linux/.test(s) ? 'Linux' : '';
  return { browser, os };
}

/** A short browser name from the User-Agent, for the phone's "who is asking" line. */
export function browserName(ua: string | undefined): string | undefined {
  if (!ua) return undefined;
  const { browser, os } = userAgentParts(ua);
  return os ? `${browser} on ${os}` : browser;
}

/** A form field as one string, or null when absent, repeated or too long. */
export function field(body: unknown, name: string, max: number): string | null {
  if (!body || typeof body !== 'object') return null;
  const v = (body as Record<string, unknown>)[name];
  return typeof v === 'string' && v.length <= max ? v : null;
}

/**
 * The second step passed by `method`: the session becomes signed in under a new id (so an id seen
 * before is worth nothing), "Remember this browser" is handed on, and the browser goes to settings.
 */
export async function completeSecondFactor(deps: PagesDeps, request: FastifyRequest, reply: FastifyReply, s: Signed, method: MethodId, opts: { remember: boolean }): Promise<FastifyReply> {
  await promoteSession(deps, request, reply, s, method, opts);
  return seeOther(reply, '/settings');
}

/** completeSecondFactor without the redirect, for the phone step that the page's script follows as JSON. */
export async function promoteSession(deps: PagesDeps, request: FastifyRequest, reply: FastifyReply, s: Signed, method: MethodId, opts: { remember: boolean }): Promise<Signed> {
  const signed = await deps.core.webSessions.complete(s.sid, s.session, method);
  setSessionCookie(reply, signed, deps.core.clock.now());
  if (opts.remember) await deps.rememberBrowser?.(request, reply, signed.session.user);
  return signed;
}
