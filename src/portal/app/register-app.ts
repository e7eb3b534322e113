import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import fastifyStatic from '@fastify/static';
import type { FastifyInstance } from 'fastify';

export interface AuthenticatorAppDeps {
  /** The VAPID public key (base64url) when Web Push is configured, else null. */
  webPushPublicKey: string | null;
}

export const APP_PREFIX = '/app/';

/**
 * Where the app's files are: beside this module when run from source, and in the package's
 * src/portal/app/static (listed in package.json "files") when run from the build in dist/.
 */
export function appStaticDir(): string {
  const candidates = [new URL('./static/', import.meta.url), new URL('../../../../src/portal/app/static/', import.meta.url)];
  for (const c of candidates) {
    const dir = fileURLToPath(c);
    if (existsSync(`${dir}index.html`)) return dir;
  }
  throw new Error('the web authenticator app files (src/portal/app/static) are missing from this installation');
}

/**
 * The web authenticator app (a PWA under /app/: page, service worker, manifest, icons) and the
 * Web Push key it subscribes with. Static files only: every decision goes through the device API.
 */
export function registerAuthenticatorApp(app: FastifyInstance, deps: AuthenticatorAppDeps): void {
  app.register(fastifyStatic, {
    root: appStaticDir(),
    prefix: APP_PREFIX,
    index: 'index.html',
    dotfiles: 'deny',
    // The portal's own no-store applies: an update reaches phones on their next start.
    cacheControl: false,
    decorateReply: false,
    setHeaders: (res, path) => {
      if (path.endsWith('.webmanifest')) res.header('Content-Type', 'application/manifest+json; charset=utf-8');
      // The worker controls the whole app, never more (its default scope is its own folder anyway).
      if (path.endsWith('/sw.js')) res.header('Service-Worker-Allowed', APP_PREFIX);
    },
  });

  // /app goes to /app/ (with its query, e.g. ?lang=), where the service worker's scope starts.
  app.get('/app', async (request, reply) => {
    const q = request.url.indexOf('?');
    return reply.redirect(APP_PREFIX + (q >= 0 ? request.url.slice(q) : ''), 301);
  });

  app.get('/api/v1/webpush/key', async () => {
    // null, not 404, without Web Push: the app asks on every start and a 404 is a console error.
    if (!deps.webPushPublicKey) return { publicKey: null };
    return { publicKey: deps.webPushPublicKey };
  });
}
