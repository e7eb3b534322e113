import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { METHOD_IDS, type MethodId } from '../../core/second-factor.js';
import { browserName, completeSecondFactor, contextOf, field, seeOther, sendPage, sessionAt, type PagesDeps, type Signed } from './page-support.js';
import { rememberChoice } from './remembered-browser-routes.js';
import { choosePage, codePage } from './sign-in-views.js';
import type { TextKey } from './texts.js';

export type PhoneStep = { ok: true; login: { requestId: string; matchNumber: number } } | { ok: false; error: TextKey; status: number };

/**
 * Sends the phone its login request (number matching). `previous` is this browser's earlier
 * session: a reload or a second click withdraws its own request and opens a new one.
 */
export async function openPhoneStep(deps: PagesDeps, user: string, client: { clientIp: string; clientName?: string }, previousRequestId?: string): Promise<PhoneStep> {
  const { core } = deps;
  const device = await core.devices.ofUser(user);
  if (!device) return { ok: false, error: 'unavailable', status: 409 };
  // The push cap of the mail logins: a new sign-in request counts, decided in the store's atomic create.
  const cap = core.limiter.pushCap(user);
  const input = { user, device, ...client };
  let opened = await core.requests.openLogin(input, cap);
  if (opened !== 'capped' && !opened.created && previousRequestId === opened.request.id) {
    await core.requests.withdrawLogin(opened.request.id, user);
    opened = await core.requests.openLogin(input, cap);
  }
  if (opened === 'capped') return { ok: false, error: 'pushLimited', status: 429 };
  // Another browser at the same address is waiting for this user's phone. Joining it would let
  // one tap sign both in, so this one waits until that request is answered or expires.
  if (!opened.created) return { ok: false, error: 'alreadyWaiting', status: 409 };
  return { ok: true, login: { requestId: opened.request.id, matchNumber: opened.request.matchNumber ?? 0 } };
}

/** `/signin/choose` ("Use another method"), `/signin/method` (switch), `/signin/code` (a typed code). */
export function registerSecondStepRoutes(app: FastifyInstance, deps: PagesDeps): void {
  const { core } = deps;

  /** The session in its second step, or null after sending the browser back to the start. */
  const inSecondStep = (request: FastifyRequest, reply: FastifyReply): Promise<Signed | null> => sessionAt(deps, request, reply, 'second-factor');

  app.get('/signin/choose', async (request, reply) => {
    const s = await inSecondStep(request, reply);
    if (!s) return reply;
    const current = s.session.method ?? 'phone';
    const others = (await core.secondFactors.methodsOf(s.session.user)).filter((m) => m !== current);
    return sendPage(reply, choosePage(contextOf(request, reply), others));
  });

  app.post('/signin/method', async (request, reply) => {
    const s = await inSecondStep(request, reply);
    if (!s) return reply;
    const asked = field(request.body, 'method', 16) as MethodId | null;
    const user = s.session.user;
    if (!asked || !METHOD_IDS.includes(asked) || !(await core.secondFactors.methodsOf(user)).includes(asked)) return seeOther(reply, '/');
    // Leaving the phone step withdraws its request, so the phone no longer shows it.
    const login = s.session.login;
    if (login && asked !== 'phone') {
      await core.requests.withdrawLogin(login.requestId, user);
      delete s.session.login;
    }
    if (asked === 'phone' && !login) {
      const clientName = browserName(request.headers['user-agent']);
      const step = await openPhoneStep(deps, user, { clientIp: request.ip, ...(clientName ? { clientName } : {}) });
      if (!step.ok) {
        const ctx = contextOf(request, reply);
        const others = (await core.secondFactors.methodsOf(user)).filter((m) => m !== (s.session.method ?? 'phone'));
        return sendPage(reply, choosePage(ctx, others, step.error), step.status);
      }
      s.session.login = step.login;
    }
    s.session.method = asked;
    await core.webSessions.save(s.sid, s.session);
    return seeOther(reply, '/');
  });

  app.post('/signin/code', async (request, reply) => {
    const s = await inSecondStep(request, reply);
    if (!s) return reply;
    const method = s.session.method;
    if (method !== 'totp' && method !== 'recovery') return seeOther(reply, '/');
    const user = s.session.user;
    const methods = await core.secondFactors.methodsOf(user);
    const code = field(request.body, 'code', 64) ?? '';
    const remember = field(request.body, 'remember', 8) === 'on';
    // The page again with its error; the box stays as it was ticked.
    const shown = rememberChoice(deps, s);
    const again = (error: TextKey, status: number) =>
      sendPage(reply, codePage(contextOf(request, reply), { method, others: methods.length > 1, error, remember: shown === undefined ? undefined : shown || remember }), status);
    if (!methods.includes(method)) return again('wrongCode', 400);
    // A wrong code is a failed login: the same per-user and per-address counters as a wrong password.
    const reserved = await core.limiter.reserveLogin(user, request.ip);
    if ('blocked' in reserved) return again('rateLimited', 429);
    const result = method === 'totp' ? await core.totp.verify(user, code) : (await core.recoveryCodes.use(user, code)) ? 'ok' : 'wrong';
    if (result !== 'ok') {
      deps.logger.info({ event: 'web.second-factor-refused', user, method, clientIp: request.ip, why: result }, 'wrong second-factor code');
      return again(result === 'replayed' ? 'replayedCode' : method === 'recovery' ? 'usedRecovery' : 'wrongCode', 401);
    }
    await core.limiter.releaseLogin(reserved.reservation);
    return completeSecondFactor(deps, request, reply, s, method, { remember });
  });
}
