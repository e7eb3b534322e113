import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import {
  browserName,
  clearSessionCookie,
  contextOf,
  field,
  seeOther,
  sendPage,
  sessionOf,
  setSessionCookie,
  type PagesDeps,
  type Signed,
} from './page-support.js';
import { approvePage, pushCodePage, signInPage } from './sign-in-views.js';
import type { TextKey } from './texts.js';

/** Control characters never belong in a user name (and would reach the upstream's LOGIN). */
const USER_NAME = /^[^\x00-\x20\x7f]{1,255}$/;

type Step = { status: 'pending' } | { status: 'approved'; signed: Signed } | { status: 'denied' | 'expired' };

/** `/`, `/signin`, `/signin/status`, `/signin/cancel`, `/signout`. */
export function registerSignInRoutes(app: FastifyInstance, deps: PagesDeps): void {
  const { core } = deps;

  /** Where a session in its second step stands; an approved one is promoted (new id), a refused one ended. */
  const advance = async (s: Signed, reply: FastifyReply): Promise<Step> => {
    const login = s.session.login;
    const request = login ? await core.requests.get(login.requestId) : null;
    if (request?.status === 'pending') return { status: 'pending' };
    if (request?.status === 'approved' && request.user === s.session.user) {
      const signed = await core.webSessions.complete(s.sid, s.session, 'phone');
      setSessionCookie(reply, signed, core.clock.now());
      return { status: 'approved', signed };
    }
    await core.webSessions.end(s.sid);
    clearSessionCookie(reply);
    return { status: request?.status === 'denied' ? 'denied' : 'expired' };
  };

  const refuse = (request: FastifyRequest, reply: FastifyReply, error: TextKey, status: number, user?: string) =>
    sendPage(reply, signInPage(contextOf(request, reply), { error, ...(user !== undefined ? { user } : {}) }), status);

  app.get('/', async (request, reply) => {
    const s = await sessionOf(deps, request);
    if (s?.session.stage === 'signed-in') return seeOther(reply, '/settings');
    if (s) {
      const step = await advance(s, reply);
      if (step.status === 'approved') return seeOther(reply, '/settings');
      if (step.status === 'pending') {
        const device = await core.store.getDeviceByUser(s.session.user);
        if (s.session.login?.pushCode) return sendPage(reply, pushCodePage(contextOf(request, reply), { device: device?.name ?? '' }));
        return sendPage(reply, approvePage(contextOf(request, reply), { device: device?.name ?? '', number: s.session.login?.matchNumber ?? 0 }));
      }
      return refuse(request, reply, step.status === 'denied' ? 'approveDenied' : 'approveExpired', 200);
    }
    return sendPage(reply, signInPage(contextOf(request, reply)));
  });

  app.post('/signin', async (request, reply) => {
    const typed = field(request.body, 'user', 255)?.trim() ?? '';
    const password = field(request.body, 'password', 1024) ?? '';
    if (!USER_NAME.test(typed) || password === '') return refuse(request, reply, 'badPassword', 400, typed);
    const clientIp = request.ip;
    const clientName = browserName(request.headers['user-agent']);
    const checked = await deps.checkPassword(typed, password, { ip: clientIp, port: request.socket.remotePort ?? 0, ...(clientName ? { name: clientName } : {}) });
    switch (checked.kind) {
      case 'bad-password':
        return refuse(request, reply, 'badPassword', 401, typed);
      case 'rate-limited':
        return refuse(request, reply, 'rateLimited', 429, typed);
      case 'unavailable':
        return refuse(request, reply, 'unavailable', 503, typed);
      case 'ok':
        break;
    }
    // From here on the canonical name: the one every record of the account is kept under.
    const user = checked.user;
    const now = core.clock.now();
    // This browser's earlier sign-in, if any, ends here.
    const previous = await sessionOf(deps, request);
    if (previous) await core.webSessions.end(previous.sid);
    const device = await core.store.getDeviceByUser(user);
    if (!device) {
      // No second factor yet: the password alone signs in, and the user may set one up.
      const signed = await core.webSessions.create(user, 'signed-in', 'none');
      setSessionCookie(reply, signed, now);
      return seeOther(reply, '/settings');
    }
    // The push cap of the mail logins: a new sign-in request counts, decided in the store's atomic create.
    const cap = core.limiter.pushCap(user);
    const input = { user, device, clientIp, ...(clientName ? { clientName } : {}) };
    let opened = await core.requests.openLogin(input, cap);
    if (opened !== 'capped' && !opened.created && previous?.session.login?.requestId === opened.request.id && previous.session.user === user) {
      // The same browser signing in again (a reload, a second click): its old request is withdrawn
      // and a new one, with a new number, takes its place.
      await core.requests.withdrawLogin(opened.request.id, user);
      opened = await core.requests.openLogin(input, cap);
    }
    if (opened === 'capped') return refuse(request, reply, 'pushLimited', 429, user);
    const { request: login, created } = opened;
    if (!created) {
      // Another browser at the same address is waiting for this user's phone. Joining it would let
      // one tap sign both in, so this one waits until that request is answered or expires.
      return refuse(request, reply, 'alreadyWaiting', 409, user);
    }
    const signed = await core.webSessions.create(user, 'second-factor', 'none', { login: { requestId: login.id, matchNumber: login.matchNumber ?? 0 } });
    setSessionCookie(reply, signed, now);
    return seeOther(reply, '/');
  });

  app.get('/signin/status', async (request, reply) => {
    const s = await sessionOf(deps, request);
    const { t } = contextOf(request, reply);
    if (s?.session.stage === 'signed-in') return { status: 'approved', next: '/settings' };
    if (!s) return { status: 'expired', message: t('approveExpired') };
    const step = await advance(s, reply);
    switch (step.status) {
      case 'pending':
        return { status: 'pending' };
      case 'approved':
        return { status: 'approved', next: '/settings' };
      case 'denied':
        return { status: 'denied', message: t('approveDenied') };
      case 'expired':
        return { status: 'expired', message: t('approveExpired') };
    }
  });

  app.post('/signin/cancel', async (request, reply) => {
    const s = await sessionOf(deps, request);
    if (s) {
      if (s.session.login) await core.requests.withdrawLogin(s.session.login.requestId, s.session.user);
      await core.webSessions.end(s.sid);
    }
    clearSessionCookie(reply);
    return seeOther(reply, '/');
  });

  app.post('/signout', async (request, reply) => {
    const s = await sessionOf(deps, request);
    if (s) {
      await core.webSessions.end(s.sid);
      deps.logger.info({ event: 'web.signed-out', user: s.session.user }, 'web sign-out');
    }
    clearSessionCookie(reply);
    return seeOther(reply, '/');
  });
}
