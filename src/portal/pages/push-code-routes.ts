import type { FastifyInstance } from 'fastify';
import { browserName, clearSessionCookie, contextOf, field, seeOther, sendPage, sessionOf, type PagesDeps } from './page-support.js';
import { rememberChoice } from './remembered-browser-routes.js';
import { pushCodePage, signInPage } from './sign-in-views.js';

/** Wrong codes one push-code request survives; then it is withdrawn and the sign-in starts again. */
export const PUSH_CODE_TRIES = 3;

/**
 * The push code (the seed's MailCloud Messenger flow), reached from the phone step's "Use a code
 * instead": `POST /signin/push-code` withdraws the number-matching request and opens one whose device shows
 * six digits and a "Yes"; `POST /signin/push-code/verify` checks the typed code. A wrong code counts as a
 * failed login (the mail logins' limits) and against the request's own few tries.
 */
export function registerPushCodeRoutes(app: FastifyInstance, deps: PagesDeps): void {
  const { core } = deps;

  app.post('/signin/push-code', async (request, reply) => {
    const s = await sessionOf(deps, request);
    if (!s || s.session.stage !== 'second-factor' || !s.session.login) return seeOther(reply, '/');
    if (s.session.login.pushCode) return seeOther(reply, '/');
    const device = await core.devices.ofUser(s.session.user);
    if (!device) return seeOther(reply, '/');
    await core.requests.withdrawLogin(s.session.login.requestId, s.session.user);
    const clientName = browserName(request.headers['user-agent']);
    const opened = await core.requests.openLoginCode({ user: s.session.user, device, clientIp: request.ip, ...(clientName ? { clientName } : {}) }, core.limiter.pushCap(s.session.user));
    if (opened === 'capped' || !opened.created) {
      await core.webSessions.end(s.sid);
      clearSessionCookie(reply);
      return sendPage(reply, signInPage(contextOf(request, reply), { error: opened === 'capped' ? 'pushLimited' : 'alreadyWaiting', user: s.session.user }), opened === 'capped' ? 429 : 409);
    }
    await core.webSessions.save(s.sid, { ...s.session, login: { requestId: opened.request.id, matchNumber: 0, pushCode: true } });
    return seeOther(reply, '/');
  });

  app.post('/signin/push-code/verify', async (request, reply) => {
    const s = await sessionOf(deps, request);
    const login = s?.session.login;
    if (!s || s.session.stage !== 'second-factor' || !login?.pushCode) return seeOther(reply, '/');
    const typed = (field(request.body, 'code', 32) ?? '').replace(/\s+/g, '');
    const device = await core.devices.ofUser(s.session.user);
    // The page again with its error, and with "Use another method" as GET / shows it.
    const others = (await core.secondFactors.methodsOf(s.session.user)).length > 1;
    const page = (error: 'wrongCode' | 'rateLimited', status: number) => sendPage(reply, pushCodePage(contextOf(request, reply), { device: device?.name ?? '', others, error, remember: rememberChoice(deps, s) }), status);
    // Counted before the check, like a password: concurrent guesses cannot slip under the cap.
    const reserved = await core.limiter.reserveLogin(s.session.user, request.ip);
    if ('blocked' in reserved) return page('rateLimited', 429);
    const verdict = await core.requests.approveByCode(login.requestId, s.session.user, typed);
    if (verdict === 'approved') {
      await core.limiter.releaseLogin(reserved.reservation);
      // GET / promotes the session, as after a Yes on the phone.
      return seeOther(reply, '/');
    }
    if (verdict === 'gone') return seeOther(reply, '/');
    deps.logger.warn({ event: 'web.push-code-wrong', user: s.session.user, clientIp: request.ip, requestId: login.requestId }, 'wrong push code typed');
    const tries = (login.wrongCodes ?? 0) + 1;
    if (tries >= PUSH_CODE_TRIES) {
      await core.requests.withdrawLogin(login.requestId, s.session.user);
      await core.webSessions.end(s.sid);
      clearSessionCookie(reply);
      return sendPage(reply, signInPage(contextOf(request, reply), { error: 'wrongCode', user: s.session.user }), 401);
    }
    await core.webSessions.save(s.sid, { ...s.session, login: { ...login, wrongCodes: tries } });
    return page('wrongCode', 401);
  });
}
