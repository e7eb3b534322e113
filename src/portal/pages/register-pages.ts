import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import fastifyCookie from '@fastify/cookie';
import fastifyCsrf from '@fastify/csrf-protection';
import fastifyHelmet from '@fastify/helmet';
import fastifyStatic from '@fastify/static';
import type { FastifyError, FastifyInstance } from 'fastify';
import { isMailotpError } from '../../core/errors.js';
import { registerForwardAuthRoutes } from './forward-auth-routes.js';
import { registerPasskeyRoutes } from './passkey-routes.js';
import { contextOf, CSRF_COOKIE, sendPage, useSessionCookie, type PagesDeps } from './page-support.js';
import { registerPushCodeRoutes } from './push-code-routes.js';
import { registerRememberedBrowserRoutes, rememberThisBrowser } from './remembered-browser-routes.js';
import { registerSecondStepRoutes } from './second-step-routes.js';
import { registerSettingsRoutes } from './settings-routes.js';
import { registerSignInRoutes } from './sign-in-routes.js';
import { DecisionWaits } from './decision-waits.js';
import { messagePage } from './sign-in-views.js';

export type { PagesDeps } from './page-support.js';

/** A sign-in or settings form is a few hundred bytes. */
const FORM_BODY_LIMIT = 8 * 1024;

/** The CSP of the whole portal (pages and the authenticator app): nothing inline, nothing foreign. */
export const PORTAL_CSP = {
  defaultSrc: ["'self'"],
  scriptSrc: ["'self'"],
  styleSrc: ["'self'"],
  imgSrc: ["'self'", 'data:'],
  connectSrc: ["'self'"],
  workerSrc: ["'self'"],
  manifestSrc: ["'self'"],
  frameAncestors: ["'none'"],
  baseUri: ["'none'"],
  formAction: ["'self'"],
  objectSrc: ["'none'"],
};

/** The pages' CSS, JS and icon: served from the source tree, which `npm ci` keeps next to dist/. */
function staticRoot(): string {
  const built = fileURLToPath(new URL('./static/', import.meta.url));
  return existsSync(built) ? built : fileURLToPath(new URL('../../../../src/portal/pages/static/', import.meta.url));
}

/**
 * The portal's web pages (INTERFACE.md, "Web pages on the portal listener"), and what the whole
 * portal shares: security headers and CSP, cookies, CSRF protection on every non-API form post.
 */
export function registerPages(app: FastifyInstance, given: PagesDeps): void {
  const deps: PagesDeps = { rememberBrowser: (request, reply, user) => rememberThisBrowser(given, request, reply, user), ...given };
  void app.register(fastifyHelmet, {
    contentSecurityPolicy: { useDefaults: false, directives: PORTAL_CSP },
    strictTransportSecurity: deps.tls ? { maxAge: 31_536_000 } : false,
    referrerPolicy: { policy: 'no-referrer' },
    // The same as frame-ancestors 'none', for browsers that only know the header.
    frameguard: { action: 'deny' },
    crossOriginEmbedderPolicy: false,
  });
  void app.register(fastifyCookie);
  // The session cookie's name and scope (portal.cookieDomain), for every route that reads or sets it.
  app.addHook('onRequest', (request, _reply, done) => {
    useSessionCookie(request, deps);
    done();
  });
  void app.register(fastifyCsrf, {
    cookieKey: CSRF_COOKIE,
    // The secret cookie: __Host- (no sibling host can plant one), HttpOnly, Secure, never sent cross-site.
    cookieOpts: { path: '/', httpOnly: true, secure: true, sameSite: 'strict' },
  });
  void app.register(fastifyStatic, {
    root: staticRoot(),
    prefix: '/static/',
    // The authenticator app registers its own static files; only one registration may decorate the reply.
    decorateReply: false,
    index: false,
    maxAge: 3_600_000,
  });

  void app.register(async (pages) => {
    // JSON APIs under /api/ use bearer tokens or single-use secrets, never cookies: no CSRF there.
    pages.addContentTypeParser('application/x-www-form-urlencoded', { parseAs: 'string', bodyLimit: FORM_BODY_LIMIT }, (_request, body, done) => {
      const form: Record<string, string | string[]> = {};
      for (const [k, v] of new URLSearchParams(body as string)) {
        const seen = form[k];
        form[k] = seen === undefined ? v : ([] as string[]).concat(seen, v);
      }
      done(null, form);
    });
    pages.addHook('preHandler', (request, reply, done) => {
      if (request.method === 'GET' || request.method === 'HEAD') {
        done();
        return;
      }
      pages.csrfProtection(request, reply, done);
    });
    pages.addHook('onSend', async (_request, reply, payload) => {
      void reply.header('Permissions-Policy', 'camera=(), microphone=(), geolocation=(), payment=()');
      return payload;
    });
    pages.setErrorHandler((err: FastifyError, request, reply) => {
      const ctx = contextOf(request, reply);
      if (err.code === 'FST_CSRF_INVALID_TOKEN' || err.code === 'FST_CSRF_MISSING_SECRET') {
        deps.logger.warn({ event: 'web.csrf-refused', clientIp: request.ip, route: request.routeOptions.url }, 'form without a valid CSRF token refused');
        return sendPage(reply, messagePage(ctx, 'errorTitle', 'formExpired'), 403);
      }
      if (isMailotpError(err, 'MAILOTP_ERR_STORE_UNAVAILABLE')) {
        deps.logger.warn({ route: request.routeOptions.url, err: err.message }, 'store unavailable');
        return sendPage(reply, messagePage(ctx, 'errorTitle', 'unavailable'), 503);
      }
      const status = err.statusCode !== undefined && err.statusCode >= 400 && err.statusCode < 500 ? err.statusCode : 500;
      if (status === 500) deps.logger.error({ route: request.routeOptions.url, err: err.message, stack: err.stack }, 'portal page failed');
      return sendPage(reply, messagePage(ctx, 'errorTitle', status === 500 ? 'unavailable' : 'formExpired'), status);
    });
    // First: its hook on GET /settings sends a finished sign-in back to the webmail.
    registerForwardAuthRoutes(pages, deps);
    // The held status requests of the sign-in and pairing pages: one per session, bounded per instance.
    const waits = new DecisionWaits();
    pages.addHook('preClose', (done) => {
      waits.abortAll();
      done();
    });
    registerSignInRoutes(pages, deps, waits);
    registerSecondStepRoutes(pages, deps);
    registerPushCodeRoutes(pages, deps);
    registerSettingsRoutes(pages, deps, waits);
    registerPasskeyRoutes(pages, deps);
    registerRememberedBrowserRoutes(pages, deps);
  });
}
