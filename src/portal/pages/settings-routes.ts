import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { LinkState } from '../../core/pairing-service.js';
import type { DeviceRecord } from '../../core/types.js';
import { METHOD_IDS, type MethodId } from '../../core/second-factor.js';
import { messagePage } from './sign-in-views.js';
import { browsersModel } from './remembered-browser-routes.js';
import { browserName, clearSessionCookie, contextOf, field, seeOther, sendPage, sessionOf, type PagesDeps, type Signed } from './page-support.js';
import { clearConfirmPage, newKeyConfirmPage, settingsPage, type SettingsModel } from './settings-views.js';
import type { TextKey } from './texts.js';
import { DECISION_WAIT_MS, holdResponse, wantsWait, type DecisionWaits } from './decision-waits.js';

/** `?done=` after a redirect: only these words, each with its text. */
const DONE: Record<string, TextKey> = { bound: 'bound', cleared: 'cleared', saved: 'saved', revoked: 'revoked', totp: 'totpActivated', 'totp-removed': 'totpRemoved', passkey: 'passkeyRegistered', 'passkey-removed': 'passkeyRemoved', 'browser-revoked': 'browserRevoked', 'browsers-revoked': 'browsersRevoked' };
const LINK_ERRORS: Record<Exclude<LinkState, 'waiting' | 'bound'>, TextKey> = { 'wrong-number': 'pairWrong', exists: 'pairExists', expired: 'pairExpired' };

/** `/settings` and its forms. Every route needs a signed-in session; changes to methods need one that passed the phone. */
/** Loaded on first use: most starts never draw a QR code, and every start should be quick. */
async function qrcode(): Promise<typeof import('qrcode')> {
  return (await import('qrcode')).default;
}

export function registerSettingsRoutes(app: FastifyInstance, deps: PagesDeps, waits: DecisionWaits): void {
  const { core } = deps;

  /** The signed-in session, or null after answering (a redirect to sign-in, or 401 for the page's fetch()). */
  const signedIn = async (request: FastifyRequest, reply: FastifyReply, json = false): Promise<Signed | null> => {
    const s = await sessionOf(deps, request);
    if (s?.session.stage === 'signed-in') return s;
    if (json) void reply.code(401).send({ status: 'signed-out' });
    else {
      if (!s) clearSessionCookie(reply);
      void seeOther(reply, '/');
    }
    return null;
  };

  /** Once any second factor exists, changing the methods needs a session that passed one. */
  const mayChange = async (s: Signed): Promise<boolean> => s.session.factor !== 'none' || (await core.secondFactors.methodsOf(s.session.user)).length === 0;

  /** Below the admin's required number of methods the user may only set one up (and sign out). */
  const mustSetUp = async (s: Signed): Promise<number> => core.secondFactors.missing(s.session.user);

  /** A change to the methods: refused (403) when this session did not pass the user's second factor. */
  const changing = async (request: FastifyRequest, reply: FastifyReply): Promise<Signed | null> => {
    const s = await signedIn(request, reply);
    if (!s) return null;
    if (await mayChange(s)) return s;
    await renderSettings(request, reply, s, { error: 'stepUp' }, 403);
    return null;
  };

  const daemonState = async (user: string, device: DeviceRecord | null): Promise<SettingsModel['daemon']> => {
    const { required, fixed } = await core.users.daemonOtp(user, device);
    return { on: required, fixed };
  };

  /** Follows the QR pairing the session started: drops it once settled, and says how it ended. */
  const followPairing = async (s: Signed): Promise<LinkState | null> => {
    const pair = s.session.pair;
    if (!pair) return null;
    const state = await core.pairing.linkState(pair.linkId);
    if (state === 'waiting') return state;
    delete s.session.pair;
    if (state === 'bound') s.session.factor = 'phone';
    await core.webSessions.save(s.sid, s.session);
    return state;
  };

  const pairingLink = (request: FastifyRequest, secret: string): string => {
    const origin = deps.publicUrl?.replace(/\/+$/, '') ?? `${deps.tls ? 'https' : 'http'}://${request.headers.host ?? 'localhost'}`;
    return `${origin}/app/#pair=${secret}`;
  };

  const renderSettings = async (request: FastifyRequest, reply: FastifyReply, s: Signed, extra: Pick<SettingsModel, 'notice' | 'error'> & { codes?: string[] } = {}, status = 200) => {
    const user = s.session.user;
    const linkState = await followPairing(s);
    const device = await core.devices.ofUser(user);
    const sf = core.secondFactors;
    const [daemon, approvals, recent, methods, totpPending, recoveryLeft, passkeys, browsers] = await Promise.all([
      daemonState(user, device),
      core.approvals.list(user),
      core.requests.recent(user),
      sf.methodsOf(user),
      core.totp.pending(user),
      core.recoveryCodes.remaining(user),
      core.passkeys.list(user),
      browsersModel(deps, request, user),
    ]);
    const defaultMethod = await sf.defaultMethod(user, methods);
    const available = sf.available();
    const done = (request.query as Record<string, unknown>).done;
    const { codes: _codes, ...shown } = extra;
    const model: SettingsModel = {
      user,
      device,
      pair: null,
      daemon,
      canChangeMethods: s.session.factor !== 'none' || methods.length === 0,
      mustSetUp: await sf.missing(user, methods),
      methods,
      available,
      defaultMethod,
      totp: { on: methods.includes('totp'), pending: null },
      recovery: { left: recoveryLeft, codes: extra.codes ?? null },
      passkeys: { list: passkeys, defaultName: browserName(request.headers['user-agent']) ?? '' },
      approvals,
      recent,
      browsers,
      ...(typeof done === 'string' && DONE[done] ? { notice: DONE[done] } : {}),
      ...shown,
    };
    if (linkState === 'bound') model.notice = 'bound';
    else if (linkState && linkState !== 'waiting') model.error = LINK_ERRORS[linkState];
    const pair = s.session.pair;
    if (pair && !device) {
      const url = pairingLink(request, pair.secret);
      // Loaded on first use: most starts never draw a QR code, and every start should be quick.
      const QRCode = await qrcode();
      model.pair = { url, number: pair.number, expiresAt: pair.expiresAt, qr: await QRCode.toDataURL(url, { errorCorrectionLevel: 'M', margin: 2, width: 240 }) };
    }
    if (totpPending && model.canChangeMethods) {
      const QRCode = await qrcode();
      model.totp.pending = { secret: totpPending.secret, qr: await QRCode.toDataURL(totpPending.uri, { errorCorrectionLevel: 'M', margin: 2, width: 240 }) };
    }
    return sendPage(reply, settingsPage(contextOf(request, reply), model), status);
  };

  app.get('/settings', async (request, reply) => {
    const s = await signedIn(request, reply);
    if (!s) return reply;
    return renderSettings(request, reply, s);
  });

  app.post('/settings/pair/start', async (request, reply) => {
    const s = await changing(request, reply);
    if (!s) return reply;
    if (await core.devices.ofUser(s.session.user)) return renderSettings(request, reply, s, { error: 'pairExists' }, 409);
    if (s.session.pair) await core.pairing.cancelLink(s.session.pair.secret);
    const link = await core.pairing.startLink(s.session.user);
    s.session.pair = { linkId: link.linkId, secret: link.secret, number: link.number, expiresAt: link.expiresAt };
    await core.webSessions.save(s.sid, s.session);
    return seeOther(reply, '/settings#pairing');
  });

  app.post('/settings/pair/cancel', async (request, reply) => {
    const s = await signedIn(request, reply);
    if (!s) return reply;
    if (s.session.pair) {
      await core.pairing.cancelLink(s.session.pair.secret);
      delete s.session.pair;
      await core.webSessions.save(s.sid, s.session);
    }
    return seeOther(reply, '/settings');
  });

  // The settings page's portal.js follows the QR pairing here and moves on by itself.
  app.get('/settings/pair/status', async (request, reply) => {
    const s = await signedIn(request, reply, true);
    if (!s) return reply;
    const { t } = contextOf(request, reply);
    let state = (await followPairing(s)) ?? 'expired';
    // `?wait=1` (the settings page's portal.js): held until the phone answers, on any instance, or DECISION_WAIT_MS.
    const linkId = s.session.pair?.linkId;
    if (state === 'waiting' && linkId && wantsWait(request.query)) {
      const held = await holdResponse(waits, s.sid, request, reply, (signal) => core.pairing.waitWhileWaiting(linkId, DECISION_WAIT_MS, signal));
      if (held === 'done') {
        // Read again: the session may have moved on meanwhile (another tab, a new pairing).
        const again = await sessionOf(deps, request);
        if (!again) return { status: 'expired', message: t(LINK_ERRORS.expired) };
        state = (await followPairing(again)) ?? 'expired';
      }
    }
    if (state === 'waiting') return { status: 'waiting' };
    if (state === 'bound') return { status: 'bound', next: '/settings?done=bound' };
    return { status: state, message: t(LINK_ERRORS[state]) };
  });

  app.post('/settings/pair/code', async (request, reply) => {
    const s = await changing(request, reply);
    if (!s) return reply;
    const code = field(request.body, 'code', 32) ?? '';
    const result = await core.pairing.bindByCode(s.session.user, code);
    switch (result.status) {
      case 'bound':
        // Binding proved the phone is in the user's hand: this session counts as having passed it.
        s.session.factor = 'phone';
        await core.webSessions.save(s.sid, s.session);
        return seeOther(reply, '/settings?done=bound');
      case 'not-found':
        return renderSettings(request, reply, s, { error: 'codeNotFound' }, 400);
      case 'exists':
        return renderSettings(request, reply, s, { error: 'pairExists' }, 409);
      case 'rate-limited':
        return renderSettings(request, reply, s, { error: 'codeLimited' }, 429);
    }
  });

  app.get('/settings/clear-device', async (request, reply) => {
    const s = await signedIn(request, reply);
    if (!s) return reply;
    const device = await core.devices.ofUser(s.session.user);
    if (!device || !(await mayChange(s))) return seeOther(reply, '/settings');
    return sendPage(reply, clearConfirmPage(contextOf(request, reply), device));
  });

  app.post('/settings/clear-device', async (request, reply) => {
    const s = await signedIn(request, reply);
    if (!s) return reply;
    const device = await core.devices.ofUser(s.session.user);
    if (!device) return seeOther(reply, '/settings');
    if (!(await mayChange(s))) return renderSettings(request, reply, s, { error: 'stepUp' }, 403);
    await core.pairing.clear(s.session.user);
    // Every other session of the user ends: whoever held one may have been the reason to clear.
    if (s.session.factor === 'phone') s.session.factor = 'none';
    await core.webSessions.endAll(s.session.user, s);
    return seeOther(reply, '/settings?done=cleared');
  });

  app.post('/settings/daemon-otp', async (request, reply) => {
    const s = await signedIn(request, reply);
    if (!s) return reply;
    const user = s.session.user;
    const device = await core.devices.ofUser(user);
    const state = await daemonState(user, device);
    if (state.fixed) return renderSettings(request, reply, s, {}, 409);
    if ((await mustSetUp(s)) > 0) return renderSettings(request, reply, s, {}, 403);
    if (!(await mayChange(s))) return renderSettings(request, reply, s, { error: 'stepUp' }, 403);
    const on = field(request.body, 'daemonOtp', 8) === 'on';
    await core.users.setDaemonOtp(user, on, 'portal');
    return seeOther(reply, '/settings?done=saved');
  });

  app.post('/settings/approvals/revoke', async (request, reply) => {
    const s = await signedIn(request, reply);
    if (!s) return reply;
    const clientIp = field(request.body, 'clientIp', 64);
    if (!clientIp) return sendPage(reply, messagePage(contextOf(request, reply), 'errorTitle', 'formExpired'), 400);
    if ((await mustSetUp(s)) > 0) return renderSettings(request, reply, s, {}, 403);
    await core.approvals.revoke(s.session.user, clientIp);
    return seeOther(reply, '/settings?done=revoked');
  });

  /** Setting up the first method proves nothing new, but the session may go on setting up the others. */
  const firstMethod = async (s: Signed, m: MethodId) => {
    if (s.session.factor !== 'none') return;
    s.session.factor = m;
    await core.webSessions.save(s.sid, s.session);
  };

  app.get('/settings/totp/new', async (request, reply) => {
    const s = await changing(request, reply);
    if (!s) return reply;
    if (!(await core.totp.isSetUp(s.session.user))) return seeOther(reply, '/settings');
    return sendPage(reply, newKeyConfirmPage(contextOf(request, reply)));
  });

  app.post('/settings/totp/start', async (request, reply) => {
    const s = await changing(request, reply);
    if (!s) return reply;
    await core.totp.begin(s.session.user);
    return seeOther(reply, '/settings#totp');
  });

  app.post('/settings/totp/cancel', async (request, reply) => {
    const s = await signedIn(request, reply);
    if (!s) return reply;
    await core.totp.cancel(s.session.user);
    return seeOther(reply, '/settings');
  });

  app.post('/settings/totp/activate', async (request, reply) => {
    const s = await changing(request, reply);
    if (!s) return reply;
    const result = await core.totp.activate(s.session.user, field(request.body, 'code', 64) ?? '');
    if (result === 'not-set-up') return seeOther(reply, '/settings');
    if (result !== 'ok') return renderSettings(request, reply, s, { error: result === 'replayed' ? 'replayedCode' : 'wrongCode' }, 400);
    await firstMethod(s, 'totp');
    return seeOther(reply, '/settings?done=totp');
  });

  app.post('/settings/totp/remove', async (request, reply) => {
    const s = await changing(request, reply);
    if (!s) return reply;
    await core.secondFactors.reset(s.session.user, 'totp', 'portal');
    return seeOther(reply, '/settings?done=totp-removed');
  });

  app.post('/settings/recovery/generate', async (request, reply) => {
    const s = await changing(request, reply);
    if (!s) return reply;
    const codes = await core.recoveryCodes.generate(s.session.user);
    await firstMethod(s, 'recovery');
    // Shown in this answer only: never stored in a form that could show them again.
    void reply.header('Cache-Control', 'no-store');
    return renderSettings(request, reply, s, { codes });
  });

  app.post('/settings/default-method', async (request, reply) => {
    const s = await changing(request, reply);
    if (!s) return reply;
    const m = field(request.body, 'method', 16) as MethodId | null;
    if (!m || !METHOD_IDS.includes(m) || !(await core.secondFactors.setDefault(s.session.user, m))) return renderSettings(request, reply, s, {}, 400);
    return seeOther(reply, '/settings?done=saved');
  });
}
