import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { hashToken } from '../../core/tokens.js';
import { field, seeOther, sessionAt, sessionOf, userAgentParts, type PagesDeps, type Signed } from './page-support.js';
import type { BrowsersModel } from './remembered-browser-views.js';

/**
 * The remembered browser's id. `__Host-` (no Domain, path /, HTTPS only) even with portal.cookieDomain:
 * only the portal's sign-in reads it, so no webmail host needs it, and none can plant one.
 * SameSite=Strict: the sign-in form that reads it is the portal's own page.
 */
export const BROWSER_COOKIE = '__Host-mailotp-browser';
const COOKIE = { path: '/', httpOnly: true, secure: true, sameSite: 'strict' } as const;

/** "Remember this browser" after a passed second step: a new id in this browser's cookie. */
export async function rememberThisBrowser(deps: PagesDeps, request: FastifyRequest, reply: FastifyReply, user: string): Promise<void> {
  const ua = userAgentParts(request.headers['user-agent']);
  const made = await deps.core.rememberedBrowsers.remember(user, { ...ua, clientIp: request.ip }, request.cookies[BROWSER_COOKIE]);
  if (!made) return;
  void reply.setCookie(BROWSER_COOKIE, made.token, { ...COOKIE, maxAge: Math.max(1, Math.floor((made.expiresAt - deps.core.clock.now()) / 1000)) });
}

/** The "Remember this browser" box of a second-step page: undefined (not shown) when the admin turned it off. */
export function rememberChoice(deps: PagesDeps, s: Signed): boolean | undefined {
  return deps.core.rememberedBrowsers.enabled ? s.session.remember === true : undefined;
}

/** Whether this browser is one the (canonical) user asked to remember: then the password alone signs in. */
export function skipsSecondStep(deps: PagesDeps, request: FastifyRequest, user: string): Promise<boolean> {
  return deps.core.rememberedBrowsers.skips(user, request.cookies[BROWSER_COOKIE], request.ip);
}

/** The settings page's list; null (no section) when the feature is off and nothing is left from before. */
export async function browsersModel(deps: PagesDeps, request: FastifyRequest, user: string): Promise<BrowsersModel | null> {
  const rb = deps.core.rememberedBrowsers;
  const list = await rb.list(user);
  if (!rb.enabled && list.length === 0) return null;
  const token = request.cookies[BROWSER_COOKIE];
  return { list, current: token ? hashToken(token) : null };
}

/** `/signin/remember` (the choice on the phone step), `/settings/browsers/revoke` and `/settings/browsers/revoke-all`. */
export function registerRememberedBrowserRoutes(app: FastifyInstance, deps: PagesDeps): void {
  const { core } = deps;

  const signedIn = (request: FastifyRequest, reply: FastifyReply): Promise<Signed | null> => sessionAt(deps, request, reply, 'signed-in');

  const forgetHere = (request: FastifyRequest, reply: FastifyReply, id?: string): void => {
    const token = request.cookies[BROWSER_COOKIE];
    if (token && (id === undefined || hashToken(token) === id)) void reply.clearCookie(BROWSER_COOKIE, COOKIE);
  };

  app.post('/signin/remember', async (request, reply) => {
    const s = await sessionOf(deps, request);
    if (s?.session.stage === 'second-factor' && core.rememberedBrowsers.enabled) {
      const remember = field(request.body, 'remember', 8) === 'on';
      const { remember: _was, ...rest } = s.session;
      await core.webSessions.save(s.sid, remember ? { ...rest, remember: true } : rest);
    }
    return seeOther(reply, '/');
  });

  app.post('/settings/browsers/revoke', async (request, reply) => {
    const s = await signedIn(request, reply);
    if (!s) return reply;
    const id = field(request.body, 'id', 64) ?? '';
    if (await core.rememberedBrowsers.revoke(s.session.user, id, 'portal')) forgetHere(request, reply, id);
    return seeOther(reply, '/settings?done=browser-revoked#browsers');
  });

  app.post('/settings/browsers/revoke-all', async (request, reply) => {
    const s = await signedIn(request, reply);
    if (!s) return reply;
    await core.rememberedBrowsers.revokeAll(s.session.user, 'portal');
    forgetHere(request, reply);
    return seeOther(reply, '/settings?done=browsers-revoked#browsers');
  });
}
