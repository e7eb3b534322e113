import { readFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { isIP } from 'node:net';
import { dirname, join } from 'node:path';
import type { AuthenticationResponseJSON, RegistrationResponseJSON } from '@simplewebauthn/server';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { RelyingParty } from '../../core/passkey-service.js';
import { browserName, contextOf, field, promoteSession, seeOther, sendPage, sessionAt, sessionOf, type PagesDeps, type Signed } from './page-support.js';
import { messagePage } from './sign-in-views.js';
import type { TextKey } from './texts.js';

/** SimpleWebAuthn's browser bundle (UMD, global SimpleWebAuthnBrowser), served as it ships in the package. */
async function browserBundle(): Promise<Buffer> {
  const main = createRequire(import.meta.url).resolve('@simplewebauthn/browser');
  // main is <package>/script/index.js; the bundle sits in <package>/dist/bundle/.
  return readFile(join(dirname(main), '..', 'dist', 'bundle', 'index.umd.min.js'));
}

const HOST_HEADER = /^(?:[A-Za-z0-9.-]+|\[[0-9A-Fa-f:.]+\])(?::[0-9]{1,5})?$/;

/**
 * The RP ID and origin: from portal.publicUrl when set (the name users type), else the request's
 * Host. Null for an IP address, which WebAuthn refuses as an RP ID, or a Host that is no host name.
 */
export function relyingPartyOf(deps: Pick<PagesDeps, 'publicUrl' | 'tls'>, request: FastifyRequest): RelyingParty | null {
  const host = request.headers.host ?? '';
  // Only a plain host[:port]: anything else (user info, a path) would make the URL parser pick another host.
  if (!deps.publicUrl && !HOST_HEADER.test(host)) return null;
  try {
    const url = new URL(deps.publicUrl ?? `${deps.tls ? 'https' : 'http'}://${host}`);
    const name = url.hostname.replace(/^\[|\]$/g, '');
    if (name === '' || isIP(name) !== 0) return null;
    return { id: name, origin: url.origin };
  } catch {
    return null;
  }
}

/** The browser's answer as the library takes it: checked in depth there, only its shape here. */
function credentialOf<T extends RegistrationResponseJSON | AuthenticationResponseJSON>(body: unknown): T | null {
  const r = body && typeof body === 'object' ? (body as Record<string, unknown>).response : null;
  if (!r || typeof r !== 'object') return null;
  const c = r as Record<string, unknown>;
  return typeof c.id === 'string' && typeof c.rawId === 'string' && c.type === 'public-key' && c.response && typeof c.response === 'object' ? (r as T) : null;
}

/** A passkey answer is a few kilobytes at most (attestation certificates included). */
const JSON_BODY = { bodyLimit: 64 * 1024 };

/** A JSON refusal: the status and the text it carries. */
type Refusal = readonly [status: number, error: TextKey];
const NO_HOST: Refusal = [409, 'passkeyNoHost'];

/** A ceremony's session and the relying party it is bound to. */
interface Ceremony {
  s: Signed;
  rp: RelyingParty;
}

const REGISTER_ERRORS = { expired: 'passkeyExpired', refused: 'passkeyRefused', exists: 'passkeyExists' } as const satisfies Record<string, TextKey>;

/**
 * Passkeys: `/settings/passkeys/{options,register,remove}` and the second step's
 * `/signin/passkey/{options,verify}`. The ceremonies answer JSON to passkey.js (CSRF token in a header).
 */
export function registerPasskeyRoutes(app: FastifyInstance, deps: PagesDeps): void {
  const { core } = deps;
  let bundle: Promise<Buffer> | undefined;

  app.get('/vendor/simplewebauthn-browser.js', async (_request, reply) => {
    bundle ??= browserBundle();
    return reply.type('text/javascript; charset=utf-8').header('Cache-Control', 'public, max-age=3600').send(await bundle);
  });

  /** A JSON refusal with its text in the page's language. */
  const refuse = (request: FastifyRequest, reply: FastifyReply, status: number, error: TextKey) => reply.code(status).send({ status: 'refused', message: contextOf(request, reply).t(error) });

  /** Once any second factor exists, changing the methods needs a session that passed one (as the other methods). */
  const mayChange = async (s: Signed): Promise<boolean> => s.session.factor !== 'none' || (await core.secondFactors.methodsOf(s.session.user)).length === 0;

  /**
   * A ceremony's two JSON routes, its options and then the browser's answer, both behind one gate:
   * 401 with `signedOut` when the session is not one `admits`, else the refusal `check` finds, else
   * 409 when the request names no host a passkey can be bound to.
   */
  const ceremonyRoutes = (c: {
    options: string;
    answer: string;
    admits(s: Signed): boolean;
    signedOut: Record<string, string>;
    check(s: Signed): Promise<Refusal | null>;
    makeOptions(g: Ceremony): Promise<unknown>;
    onAnswer(g: Ceremony, request: FastifyRequest, reply: FastifyReply): Promise<unknown>;
  }): void => {
    const gate = async (request: FastifyRequest, reply: FastifyReply): Promise<Ceremony | null> => {
      const s = await sessionOf(deps, request);
      if (!s || !c.admits(s)) {
        void reply.code(401).send(c.signedOut);
        return null;
      }
      const refusal = await c.check(s);
      const rp = relyingPartyOf(deps, request);
      if (refusal || !rp) {
        void refuse(request, reply, ...(refusal ?? NO_HOST));
        return null;
      }
      return { s, rp };
    };
    app.post(c.options, JSON_BODY, async (request, reply) => {
      const g = await gate(request, reply);
      return g ? { options: await c.makeOptions(g) } : reply;
    });
    app.post(c.answer, JSON_BODY, async (request, reply) => {
      const g = await gate(request, reply);
      return g ? c.onAnswer(g, request, reply) : reply;
    });
  };

  // Registration, by a signed-in session allowed to change methods.
  ceremonyRoutes({
    options: '/settings/passkeys/options',
    answer: '/settings/passkeys/register',
    admits: (s) => s.session.stage === 'signed-in',
    signedOut: { status: 'signed-out' },
    check: async (s) => {
      if (!core.secondFactors.available().includes('passkey')) return [404, 'passkeyUnsupported'];
      return (await mayChange(s)) ? null : [403, 'stepUp'];
    },
    makeOptions: ({ s, rp }) => core.passkeys.registrationOptions(s.session.user, s.sid, rp),
    onAnswer: async ({ s, rp }, request, reply) => {
      const response = credentialOf<RegistrationResponseJSON>(request.body);
      if (!response) return refuse(request, reply, 400, 'passkeyRefused');
      const name = field(request.body, 'name', 256) || browserName(request.headers['user-agent']) || '';
      const result = await core.passkeys.register(s.session.user, s.sid, response, name, rp);
      if (result !== 'ok') return refuse(request, reply, result === 'exists' ? 409 : 400, REGISTER_ERRORS[result]);
      // The first method set up: this session may go on setting up the others (as with the other methods).
      if (s.session.factor === 'none') {
        s.session.factor = 'passkey';
        await core.webSessions.save(s.sid, s.session);
      }
      return { status: 'ok', next: '/settings?done=passkey' };
    },
  });

  app.post('/settings/passkeys/remove', async (request, reply) => {
    const s = await sessionAt(deps, request, reply, 'signed-in');
    if (!s) return reply;
    if (!(await mayChange(s))) return sendPage(reply, messagePage(contextOf(request, reply), 'errorTitle', 'stepUp'), 403);
    const id = field(request.body, 'id', 1024);
    if (!id || !(await core.passkeys.remove(s.session.user, id))) return seeOther(reply, '/settings');
    return seeOther(reply, '/settings?done=passkey-removed');
  });

  // The second step, by a session that chose its passkey.
  ceremonyRoutes({
    options: '/signin/passkey/options',
    answer: '/signin/passkey/verify',
    admits: (s) => s.session.stage === 'second-factor' && s.session.method === 'passkey',
    signedOut: { status: 'signed-out', next: '/' },
    check: async (s) => ((await core.secondFactors.methodsOf(s.session.user)).includes('passkey') ? null : [409, 'passkeyRefused']),
    makeOptions: ({ s, rp }) => core.passkeys.authenticationOptions(s.session.user, s.sid, rp),
    onAnswer: async ({ s, rp }, request, reply) => {
      const user = s.session.user;
      // A refused passkey is a failed login: the same per-user and per-address counters as a wrong password or code.
      const reserved = await core.limiter.reserveLogin(user, request.ip);
      if ('blocked' in reserved) return refuse(request, reply, 429, 'rateLimited');
      const response = credentialOf<AuthenticationResponseJSON>(request.body);
      const result = response ? await core.passkeys.authenticate(user, s.sid, response, rp) : 'refused';
      if (result !== 'ok') {
        deps.logger.info({ event: 'web.second-factor-refused', user, method: 'passkey', clientIp: request.ip, why: result }, 'passkey refused');
        return refuse(request, reply, 401, result === 'expired' ? 'passkeyExpired' : 'passkeyRefused');
      }
      await core.limiter.releaseLogin(reserved.reservation);
      const remember = (request.body as Record<string, unknown>).remember === true;
      await promoteSession(deps, request, reply, s, 'passkey', { remember });
      return { status: 'ok', next: '/settings' };
    },
  });
}
