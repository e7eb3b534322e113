import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import {
  browserName,
  clearSessionCookie,
  contextOf,
  field,
  promoteSession,
  seeOther,
  sendPage,
  sessionOf,
  setSessionCookie,
  type PagesDeps,
  type Signed,
} from './page-support.js';
import { rememberChoice, skipsSecondStep } from './remembered-browser-routes.js';
import { openPhoneStep } from './second-step-routes.js';
import { passkeyStepPage } from './passkey-views.js';
import { approvePage, codePage, pushCodePage, signInPage } from './sign-in-views.js';
import type { TextKey } from './texts.js';
import { DECISION_WAIT_MS, holdResponse, wantsWait, type DecisionWaits } from './decision-waits.js';

/** Control characters never belong in a user name (and would reach the upstream's LOGIN). */
const USER_NAME = /^[^\x00-\x20\x7f]{1,255}$/;

type Step = { status: 'pending' | 'approved' | 'denied' | 'expired' };

/** `/`, `/signin`, `/signin/status`, `/signin/cancel`, `/signout`. */
export function registerSignInRoutes(app: FastifyInstance, deps: PagesDeps, waits: DecisionWaits): void {
  const { core } = deps;

  /**
   * Where a session in its second step stands; a refused one is ended. An approved one is promoted
   * (new id) only when `promote`: by the page load at `/`, never by the status requests, so that one
   * navigation, not a status answer racing a form post of the same browser, signs it in.
   */
  const advance = async (s: Signed, request: FastifyRequest, reply: FastifyReply, promote: boolean): Promise<Step> => {
    const login = s.session.login;
    const pending = login ? await core.requests.get(login.requestId) : null;
    if (pending?.status === 'pending') return { status: 'pending' };
    if (pending?.status === 'approved' && pending.user === s.session.user) {
      if (promote) await promoteSession(deps, request, reply, s, 'phone', { remember: s.session.remember === true });
      return { status: 'approved' };
    }
    await core.webSessions.end(s.sid);
    clearSessionCookie(reply);
    return { status: pending?.status === 'denied' ? 'denied' : 'expired' };
  };

  const refuse = (request: FastifyRequest, reply: FastifyReply, error: TextKey, status: number, user?: string) =>
    sendPage(reply, signInPage(contextOf(request, reply), { error, ...(user !== undefined ? { user } : {}) }), status);

  app.get('/', async (request, reply) => {
    const s = await sessionOf(deps, request);
    if (s?.session.stage === 'signed-in') return seeOther(reply, '/settings');
    if (s) {
      const method = s.session.method ?? 'phone';
      const others = (await core.secondFactors.methodsOf(s.session.user)).length > 1;
      const remember = rememberChoice(deps, s);
      if (method === 'totp' || method === 'recovery') return sendPage(reply, codePage(contextOf(request, reply), { method, others, remember }));
      if (method === 'passkey') return sendPage(reply, passkeyStepPage(contextOf(request, reply), { others, remember }));
      const step = await advance(s, request, reply, true);
      if (step.status === 'approved') return seeOther(reply, '/settings');
      if (step.status === 'pending') {
        const device = await core.devices.ofUser(s.session.user);
        if (s.session.login?.pushCode) return sendPage(reply, pushCodePage(contextOf(request, reply), { device: device?.name ?? '', others, remember }));
        return sendPage(reply, approvePage(contextOf(request, reply), { device: device?.name ?? '', number: s.session.login?.matchNumber ?? 0, others, remember }));
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
    const methods = await core.secondFactors.methodsOf(user);
    const method = await core.secondFactors.defaultMethod(user, methods);
    if (!method) {
      // No second factor yet: the password alone signs in, and the user may set one up.
      const signed = await core.webSessions.create(user, 'signed-in', 'none');
      setSessionCookie(reply, signed, now);
      return seeOther(reply, '/settings');
    }
    // A browser this user asked to remember stands in for the second step (never for the password).
    if (await skipsSecondStep(deps, request, user)) {
      const signed = await core.webSessions.create(user, 'signed-in', 'remembered');
      setSessionCookie(reply, signed, now);
      return seeOther(reply, '/settings');
    }
    if (method !== 'phone') {
      const signed = await core.webSessions.create(user, 'second-factor', 'none', { method });
      setSessionCookie(reply, signed, now);
      return seeOther(reply, '/');
    }
    const samePerson = previous?.session.user === user ? previous.session.login?.requestId : undefined;
    const step = await openPhoneStep(deps, user, { clientIp, ...(clientName ? { clientName } : {}) }, samePerson);
    if (!step.ok) return refuse(request, reply, step.error, step.status, user);
    const signed = await core.webSessions.create(user, 'second-factor', 'none', { method: 'phone', login: step.login });
    setSessionCookie(reply, signed, now);
    return seeOther(reply, '/');
  });

  // `?wait=1` (the approve page's portal.js): a pending step answers when the phone decides, on any
  // instance, or after DECISION_WAIT_MS; without it, at once. It signs nothing in: see advance.
  app.get('/signin/status', async (request, reply) => {
    let s = await sessionOf(deps, request);
    const { t } = contextOf(request, reply);
    if (s?.session.stage === 'signed-in') return { status: 'approved', next: '/settings' };
    if (!s) return { status: 'expired', message: t('approveExpired') };
    if ((s.session.method ?? 'phone') !== 'phone') return { status: 'pending' };
    let step = await advance(s, request, reply, false);
    const requestId = s.session.login?.requestId;
    const held =
      step.status === 'pending' && requestId && wantsWait(request.query)
        ? await holdResponse(waits, s.sid, request, reply, (signal) => core.requests.waitForDecision(requestId, DECISION_WAIT_MS, signal))
        : 'refused';
    if (held !== 'refused') {
      // Shutdown, or the browser left: the page asks again (and finds this instance or another).
      if (held === 'aborted') return { status: 'pending' };
      // Read again: meanwhile the sign-in may have been cancelled, or have run out.
      s = await sessionOf(deps, request);
      if (s?.session.stage === 'signed-in') return { status: 'approved', next: '/settings' };
      if (!s) return { status: 'expired', message: t('approveExpired') };
      step = await advance(s, request, reply, false);
    }
    switch (step.status) {
      case 'pending':
        return { status: 'pending' };
      case 'approved':
        // The page load there signs the session in (see advance).
        return { status: 'approved', next: '/' };
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
