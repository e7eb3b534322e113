import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { WebSession } from '../../core/web-session-service.js';
import { COOKIE_BASE, seeOther, sessionOf, type PagesDeps } from './page-support.js';
import { rdOfQuery, safeReturnUrl } from './return-url.js';

/** The URL to return to after the sign-in, on the portal only (the pages read it there). */
const RETURN_COOKIE = '__Host-mailotp-return';
/** Long enough for a sign-in with the phone step; the URL is checked again when it is used. */
const RETURN_TTL_S = 15 * 60;

/**
 * Whether a session may pass the webmail's door: signed in, and through a second factor. A user who
 * has none set up is refused too: forward auth promises both factors, and the portal is where that
 * user sets one up (then signs in again).
 */
export function passedBothFactors(session: WebSession): boolean {
  return session.stage === 'signed-in' && session.factor !== 'none';
}

function header(request: FastifyRequest, name: string): string | undefined {
  const v = request.headers[name];
  return typeof v === 'string' && v !== '' ? v : undefined;
}

/**
 * `GET /auth/verify` (nginx auth_request, Traefik ForwardAuth, Caddy forward_auth) and
 * `GET /auth/login?rd=URL`; after a sign-in that passed both factors, GET /settings sends the browser
 * back to that URL.
 */
export function registerForwardAuthRoutes(app: FastifyInstance, deps: PagesDeps): void {
  const allowed = deps.forwardAuth?.allowedRedirects ?? [];
  const check = (rd: string | undefined) => safeReturnUrl(rd, allowed, !deps.tls);

  /** The portal's own origin for the redirect to its sign-in. */
  const portalBase = (request: FastifyRequest): string => deps.publicUrl?.replace(/\/+$/, '') ?? `${deps.tls ? 'https' : 'http'}://${request.headers.host ?? 'localhost'}`;

  app.get('/auth/verify', async (request, reply) => {
    void reply.header('Cache-Control', 'no-store');
    const s = await sessionOf(deps, request);
    if (s && passedBothFactors(s.session)) return reply.code(200).header('X-Mailotp-User', s.session.user).send();
    // Traefik and Caddy pass our answer on to the browser and say what was asked in X-Forwarded-*:
    // a redirect to the sign-in is what the user wants. nginx sends none of them and needs a 401
    // (auth_request treats anything else as an error); its error_page does the redirect.
    const host = header(request, 'x-forwarded-host');
    const uri = header(request, 'x-forwarded-uri');
    const method = header(request, 'x-forwarded-method') ?? 'GET';
    if (host && uri && (method === 'GET' || method === 'HEAD')) {
      const proto = header(request, 'x-forwarded-proto') ?? 'https';
      const rd = check(`${proto}://${host}${uri}`);
      if (rd) return reply.code(302).header('Location', `${portalBase(request)}/auth/login?rd=${encodeURIComponent(rd)}`).send();
    }
    return reply.code(401).type('text/plain; charset=utf-8').send('sign-in required\n');
  });

  app.get('/auth/login', async (request, reply) => {
    const q = request.url.indexOf('?');
    const rd = check(rdOfQuery(q < 0 ? '' : request.url.slice(q + 1)));
    if (!rd) {
      // Never a redirect elsewhere: an unknown or malformed return URL just leads to the portal.
      deps.logger.warn({ event: 'web.return-refused', clientIp: request.ip }, 'sign-in return URL not in portal.allowedRedirects');
      return seeOther(reply, '/');
    }
    const s = await sessionOf(deps, request);
    if (s && passedBothFactors(s.session)) return seeOther(reply, rd);
    void reply.setCookie(RETURN_COOKIE, rd, { ...COOKIE_BASE, maxAge: RETURN_TTL_S });
    return seeOther(reply, '/');
  });

  // Every way through the sign-in ends on GET /settings: there, a pending return URL takes over.
  app.addHook('preHandler', async (request: FastifyRequest, reply: FastifyReply) => {
    if (request.method !== 'GET' || request.url.split('?')[0] !== '/settings') return;
    const pending = request.cookies[RETURN_COOKIE];
    if (pending === undefined) return;
    const s = await sessionOf(deps, request);
    if (!s || !passedBothFactors(s.session)) return;
    void reply.clearCookie(RETURN_COOKIE, COOKIE_BASE);
    const rd = check(pending);
    if (rd) return seeOther(reply, rd);
    return undefined;
  });
}
